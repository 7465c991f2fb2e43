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
  // Event ids as 16 bytes when they are canonical UUIDs (every id this store writes); any other text
  // (a file may carry anything) in `otherIds`, by position.
  private ids = Buffer.alloc(16 * 1024);
  private otherIds = new Map<number, string>();
  length = 0;

  /** Appends a change, after `heads` moved: the stream's head there is its new hash. */
  push(line: number, eventId: string, index: number, revision: number, heads: PackedHeads): void {
    const at = this.length;
    if (at === this.lines.length) this.grow();
    this.lines[at] = line;
    this.indexes[at] = index;
    this.revisions[at] = revision;
    heads.copyHash(index, this.hashes, 32 * at);
    if (!writeUuid(eventId, this.ids, 16 * at)) this.otherIds.set(at, eventId);
    this.length = at + 1;
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
    return this.otherIds.get(at) ?? uuidText(this.ids, 16 * at);
  }
  /** Sets `target`'s head at this change's stream to where the change moved it. */
  apply(at: number, target: PackedHeads): void {
    target.set(this.indexes[at]!, this.revisions[at]!, this.hashes, 32 * at);
  }

  /** The position of the change that event `eventId` made, or -1. */
  find(eventId: string): number {
    const target = Buffer.alloc(16);
    if (!writeUuid(eventId, target, 0)) {
      let first = -1;
      for (const [at, id] of this.otherIds) if (id === eventId && (first === -1 || at < first)) first = at;
      return first;
    }
    const end = 16 * this.length;
    for (let i = this.ids.indexOf(target); i !== -1 && i < end; i = this.ids.indexOf(target, i + 1))
      if (i % 16 === 0 && !this.otherIds.has(i / 16)) return i / 16;
    return -1;
  }

  /** Drops the changes up to and including line `line` (lines only grow, so they are a prefix). */
  dropThrough(line: number): void {
    let keep = 0;
    while (keep < this.length && this.lines[keep]! <= line) keep += 1;
    if (keep === 0) return;
    const rest = this.length - keep;
    this.lines.copyWithin(0, keep, keep + rest);
    this.indexes.copyWithin(0, keep, keep + rest);
    this.revisions.copyWithin(0, keep, keep + rest);
    this.hashes.copy(this.hashes, 0, 32 * keep, 32 * (keep + rest));
    this.ids.copy(this.ids, 0, 16 * keep, 16 * (keep + rest));
    const others = [...this.otherIds].filter(([at]) => at >= keep);
    this.otherIds = new Map(others.map(([at, id]) => [at - keep, id]));
    this.length = rest;
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
    const ids = Buffer.alloc(16 * size);
    this.ids.copy(ids);
    this.ids = ids;
  }
}

const HEX_VALUE = new Int8Array(128).fill(-1);
for (let d = 0; d < 16; d++) HEX_VALUE['0123456789abcdef'.charCodeAt(d)] = d;
const hexValue = (code: number) => (code < 128 ? HEX_VALUE[code]! : -1);

/** Writes a canonical (lowercase, hyphenated) UUID's 16 bytes at `at`; false for any other text (the bytes written then mean nothing). */
export function writeUuid(id: string, target: Buffer, at: number): boolean {
  if (id.length !== 36 || id.charCodeAt(8) !== 0x2d || id.charCodeAt(13) !== 0x2d || id.charCodeAt(18) !== 0x2d || id.charCodeAt(23) !== 0x2d) return false;
  let byte = at;
  for (let i = 0; i < 36; i++) {
    if (i === 8 || i === 13 || i === 18 || i === 23) continue;
    const high = hexValue(id.charCodeAt(i));
    const low = hexValue(id.charCodeAt(++i));
    if (high < 0 || low < 0) return false;
    target[byte++] = (high << 4) | low;
  }
  return true;
}

export function uuidText(bytes: Buffer, at: number): string {
  const hex = bytes.toString('hex', at, at + 16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
