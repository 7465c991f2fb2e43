/**
 * Stream heads (revision and hash) by the stream's index, packed into typed arrays: a national log has
 * millions of streams, and an object plus a hex string per stream cost several times the memory and the
 * GC time. `PackedHeads` is the values alone (the verifier keeps a second set, as the last anchor saw
 * them); `StreamHeads` adds the names, indexed by order of first appearance (the Merkle leaf order).
 */
export class PackedHeads {
  private revisions = new Float64Array(1024);
  private hashes = Buffer.alloc(32 * 1024);
  private readonly scratch = Buffer.alloc(32);
  /** One past the highest index set. */
  size = 0;

  revision(index: number): number {
    return this.revisions[index]!;
  }

  hash(index: number): string {
    return this.hashes.toString('hex', 32 * index, 32 * index + 32);
  }

  /** Whether head `index`'s hash is `hex` (compared as bytes: no string made per call). */
  hashIs(index: number, hex: string): boolean {
    return hex.length === 64 && this.scratch.write(hex, 0, 32, 'hex') === 32 && this.hashes.compare(this.scratch, 0, 32, 32 * index, 32 * index + 32) === 0;
  }

  copyHash(index: number, target: Uint8Array, at: number): void {
    copy32(this.hashes, 32 * index, target, at);
  }

  /** Sets head `index` (at most `size`) to `revision` and the hash given as hex, or as 32 bytes of `source` at `at`. */
  set(index: number, revision: number, hash: string | Uint8Array, at = 0): void {
    if (index >= this.revisions.length) this.grow();
    if (index >= this.size) this.size = index + 1;
    this.revisions[index] = revision;
    if (typeof hash === 'string') this.hashes.write(hash, 32 * index, 32, 'hex');
    else copy32(hash, at, this.hashes, 32 * index);
  }

  private grow(): void {
    const revisions = new Float64Array(2 * this.revisions.length);
    revisions.set(this.revisions);
    this.revisions = revisions;
    const hashes = Buffer.alloc(2 * this.hashes.length);
    this.hashes.copy(hashes);
    this.hashes = hashes;
  }
}

export class StreamHeads extends PackedHeads {
  private readonly indexes = new Map<string, number>();
  private readonly names: string[] = [];

  indexOf(stream: string): number | undefined {
    return this.indexes.get(stream);
  }

  name(index: number): string {
    return this.names[index]!;
  }

  /** Moves stream `stream` (at `index`, or new when undefined) to `revision`/`hash` (hex); returns its index. */
  move(stream: string, revision: number, hash: string, index: number | undefined = this.indexes.get(stream)): number {
    if (index === undefined) {
      index = this.names.length;
      // Its own copy: a slice of the line it came in would keep the whole line alive.
      const name = Buffer.from(stream, 'utf8').toString('utf8');
      this.indexes.set(name, index);
      this.names.push(name);
    }
    this.set(index, revision, hash);
    return index;
  }
}

/** 32 bytes from `source` at `from` to `target` at `to`: a loop, since Buffer#copy's own overhead costs more than the copy. */
export function copy32(source: Uint8Array, from: number, target: Uint8Array, to: number): void {
  for (let i = 0; i < 32; i++) target[to + i] = source[from + i]!;
}
