import type { PackedHeads } from './streamHeads.js';

/**
 * The verifier's changes since the last anchor's coverage (verifyHistory.ts): line `line` (event
 * `eventId`) moved stream `index` to `revision` and a new hash (revision 0: it appeared). Packed
 * into typed arrays: between two anchors there are as many changes as events (a whole history when the
 * anchors come after it), and an object with two strings per change kept the old generation full and
 * the garbage collector busy.
 */
export class ChangeLog {
  private lines = new Float64Array(1024);
  private indexes = new Int32Array(1024);
  private revisions = new Float64Array(1024);
  private hashes = Buffer.alloc(32 * 1024);
  private eventIds: string[] = [];

  get length(): number {
    return this.eventIds.length;
  }

  /** Appends a change, after `heads` moved: the stream's head there is its new hash. */
  push(line: number, eventId: string, index: number, revision: number, heads: PackedHeads): void {
    const at = this.eventIds.length;
    if (at === this.lines.length) this.grow();
    this.lines[at] = line;
    this.indexes[at] = index;
    this.revisions[at] = revision;
    heads.copyHash(index, this.hashes, 32 * at);
    this.eventIds.push(eventId);
  }

  line(at: number): number {
    return this.lines[at]!;
  }
  index(at: number): number {
    return this.indexes[at]!;
  }
  revision(at: number): number {
    return this.revisions[at]!;
  }
  eventId(at: number): string {
    return this.eventIds[at]!;
  }
  /** Sets `target`'s head at this change's stream to where the change moved it. */
  apply(at: number, target: PackedHeads): void {
    target.set(this.indexes[at]!, this.revisions[at]!, this.hashes, 32 * at);
  }

  /** The position of the change that event `eventId` made, or -1. */
  find(eventId: string): number {
    return this.eventIds.indexOf(eventId);
  }

  /** Drops the changes up to and including line `line` (lines only grow, so they are a prefix). */
  dropThrough(line: number): void {
    let keep = 0;
    while (keep < this.eventIds.length && this.lines[keep]! <= line) keep += 1;
    if (keep === 0) return;
    const rest = this.eventIds.length - keep;
    this.lines.copyWithin(0, keep, keep + rest);
    this.indexes.copyWithin(0, keep, keep + rest);
    this.revisions.copyWithin(0, keep, keep + rest);
    this.hashes.copy(this.hashes, 0, 32 * keep, 32 * (keep + rest));
    this.eventIds = this.eventIds.slice(keep);
  }

  private grow(): void {
    const size = 2 * this.lines.length;
    const lines = new Float64Array(size);
    lines.set(this.lines);
    this.lines = lines;
    const indexes = new Int32Array(size);
    indexes.set(this.indexes);
    this.indexes = indexes;
    const revisions = new Float64Array(size);
    revisions.set(this.revisions);
    this.revisions = revisions;
    const hashes = Buffer.alloc(32 * size);
    this.hashes.copy(hashes);
    this.hashes = hashes;
  }
}
