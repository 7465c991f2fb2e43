/**
 * The Merkle tree that an anchor signs: one leaf per stream head, in the order the streams first
 * appear in the global log (so a new stream is appended as a new leaf and a verifier streaming the log
 * rebuilds the same tree), the leaf and node hashes domain-separated as in RFC 6962:
 *
 *   leaf = SHA-256(0x00 ‖ canonical JSON {"hash","revision","stream"})
 *   node = SHA-256(0x01 ‖ left ‖ right); a lone last node of a level moves up unchanged.
 *
 * Updates are incremental: only the paths of changed leaves are hashed again when the root is asked for.
 */
import { createHash } from 'node:crypto';
import { fastCanonicalJson } from '../eventStore/hashChain.js';

export type StreamHead = { stream: string; revision: number; hash: string };
export type MerklePathStep = { side: 'left' | 'right'; hash: string };

const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

export const leafHash = (head: StreamHead): Buffer =>
  createHash('sha256')
    .update(LEAF)
    .update(fastCanonicalJson({ hash: head.hash, revision: head.revision, stream: head.stream }), 'utf8')
    .digest();

const nodeHash = (left: Buffer, right: Buffer): Buffer => createHash('sha256').update(NODE).update(left).update(right).digest();

export class MerkleTree {
  private readonly levels: Buffer[][] = [[]];
  private dirty = new Set<number>();

  get size(): number {
    return this.levels[0]!.length;
  }

  /** Sets leaf `index` (0 … size; `size` appends a leaf). */
  set(index: number, leaf: Buffer): void {
    if (index > this.size) throw new Error(`Merkle leaf ${index} beyond ${this.size}`);
    this.levels[0]![index] = leaf;
    this.dirty.add(index);
  }

  root(): Buffer | null {
    if (this.size === 0) return null;
    let dirty = this.dirty;
    for (let level = 0; this.levels[level]!.length > 1 || level + 1 < this.levels.length; level++) {
      const nodes = this.levels[level]!;
      const above = (this.levels[level + 1] ??= []);
      above.length = Math.ceil(nodes.length / 2);
      const parents = new Set<number>();
      for (const index of dirty) parents.add(index >> 1);
      for (const parent of parents) {
        const left = nodes[2 * parent]!;
        const right = nodes[2 * parent + 1];
        above[parent] = right ? nodeHash(left, right) : left;
      }
      dirty = parents;
      if (above.length === 1) {
        this.levels.length = level + 2;
        break;
      }
    }
    this.dirty = new Set();
    return this.levels[this.levels.length - 1]![0]!;
  }

  /**
   * The root over the first `count` leaves (the tree as it was before later streams appeared): nodes
   * whose leaves all lie in the prefix are the full tree's, only its right edge is hashed again, so
   * O(log n) instead of a tree from scratch.
   */
  rootOfFirst(count: number): Buffer | null {
    if (count > this.size) throw new Error(`Merkle prefix ${count} beyond ${this.size}`);
    if (count === 0) return null;
    this.root();
    const node = (level: number, index: number): Buffer => {
      if ((index + 1) << level <= count || level === 0) return this.levels[level]![index]!;
      const left = node(level - 1, 2 * index);
      return (2 * index + 1) << (level - 1) < count ? nodeHash(left, node(level - 1, 2 * index + 1)) : left;
    };
    let top = 0;
    while (1 << top < count) top++;
    return node(top, 0);
  }

  /** The sibling hashes from leaf `index` up to the root (after `root()`). */
  path(index: number): MerklePathStep[] {
    this.root();
    const steps: MerklePathStep[] = [];
    for (let level = 0, i = index; level < this.levels.length - 1; level++, i >>= 1) {
      const sibling = i % 2 === 0 ? this.levels[level]![i + 1] : this.levels[level]![i - 1];
      if (sibling) steps.push({ side: i % 2 === 0 ? 'right' : 'left', hash: sibling.toString('hex') });
    }
    return steps;
  }
}

/** The root over `leaves` in order, from scratch. */
export function merkleRoot(leaves: Buffer[]): Buffer | null {
  const tree = new MerkleTree();
  leaves.forEach((leaf, i) => tree.set(i, leaf));
  return tree.root();
}

/** Recomputes a root from a leaf and its path (what an auditor's script does). */
export function rootFromPath(leaf: Buffer, path: MerklePathStep[]): Buffer {
  return path.reduce(
    (node, step) => (step.side === 'left' ? nodeHash(Buffer.from(step.hash, 'hex'), node) : nodeHash(node, Buffer.from(step.hash, 'hex'))),
    leaf,
  );
}
