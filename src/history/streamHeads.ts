/**
 * Every stream's head (revision and hash) while a history is verified, by the stream's index (its order
 * of first appearance, the Merkle leaf order). Packed into typed arrays: a national log has millions of
 * streams, and an object plus a hex string per stream cost several times the memory and the GC time.
 */
export class StreamHeads {
  private readonly indexes = new Map<string, number>();
  private readonly names: string[] = [];
  private revisions = new Float64Array(1024);
  private hashes = Buffer.alloc(32 * 1024);
  private readonly scratch = Buffer.alloc(32);

  get size(): number {
    return this.names.length;
  }

  indexOf(stream: string): number | undefined {
    return this.indexes.get(stream);
  }

  name(index: number): string {
    return this.names[index]!;
  }

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

  /** Moves stream `stream` (at `index`, or new when undefined) to `revision`/`hash` (hex); returns its index. */
  set(stream: string, revision: number, hash: string, index: number | undefined = this.indexes.get(stream)): number {
    if (index === undefined) {
      index = this.names.length;
      if (index === this.revisions.length) this.grow();
      this.indexes.set(stream, index);
      this.names.push(stream);
    }
    this.revisions[index] = revision;
    this.hashes.write(hash, 32 * index, 32, 'hex');
    return index;
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
