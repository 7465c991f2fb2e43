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

  copyHash(index: number, target: Buffer, at: number): void {
    this.hashes.copy(target, at, 32 * index, 32 * index + 32);
  }

  /** Sets head `index` (at most `size`) to `revision` and the hash given as hex, or as 32 bytes of `source` at `at`. */
  set(index: number, revision: number, hash: string | Buffer, at = 0): void {
    if (index >= this.revisions.length) this.grow();
    if (index >= this.size) this.size = index + 1;
    this.revisions[index] = revision;
    if (typeof hash === 'string') this.hashes.write(hash, 32 * index, 32, 'hex');
    else hash.copy(this.hashes, 32 * index, at, at + 32);
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
      this.indexes.set(stream, index);
      this.names.push(stream);
    }
    this.set(index, revision, hash);
    return index;
  }
}
