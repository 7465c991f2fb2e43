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
import { hash } from 'node:crypto';
import { fastCanonicalJson } from '../eventStore/hashChain.js';

export type StreamHead = { stream: string; revision: number; hash: string };
export type MerklePathStep = { side: 'left' | 'right'; hash: string };

// One-shot SHA-256 (crypto.hash): a Hash object per leaf and per node was most of a verifier's tree cost.
export const leafHash = (head: StreamHead): Buffer =>
  // Canonical JSON of {hash, revision, stream}: its keys in that (sorted) order, each value canonical.
  hash(
    'sha256',
    `\u0000{"hash":${fastCanonicalJson(head.hash)},"revision":${fastCanonicalJson(head.revision)},"stream":${fastCanonicalJson(head.stream)}}`,
    'buffer',
  );

/** A node over two children lying side by side (as siblings do in a level): their 64 bytes after 0x01. */
const NODE_INPUT = Buffer.alloc(65, 1);
const nodeOfPair = (bytes: Buffer, at: number): Buffer => {
  bytes.copy(NODE_INPUT, 1, at, at + 64);
  return hash('sha256', NODE_INPUT, 'buffer');
};
const nodeHash = (left: Buffer, right: Buffer): Buffer => {
  left.copy(NODE_INPUT, 1);
  right.copy(NODE_INPUT, 33);
  return hash('sha256', NODE_INPUT, 'buffer');
};

/** One level of the tree: its 32-byte nodes packed in one growing buffer (a Buffer object per node cost ~5× the memory). */
class Level {
  private bytes = Buffer.alloc(32 * 1024);
  length = 0;

  get(index: number): Buffer {
    return this.bytes.subarray(32 * index, 32 * index + 32);
  }

  /** The parent of nodes `2 * parent` and `2 * parent + 1` (both present). */
  parentOf(parent: number): Buffer {
    return nodeOfPair(this.bytes, 64 * parent);
  }

  put(index: number, node: Buffer): void {
    if (32 * (index + 1) > this.bytes.length) {
      const grown = Buffer.alloc(Math.max(2 * this.bytes.length, 32 * (index + 1)));
      this.bytes.copy(grown, 0, 0, 32 * this.length);
      this.bytes = grown;
    }
    node.copy(this.bytes, 32 * index);
    if (index >= this.length) this.length = index + 1;
  }
}

export class MerkleTree {
  private readonly levels: Level[] = [new Level()];
  private dirty = new Set<number>();

  get size(): number {
    return this.levels[0]!.length;
  }

  /** Sets leaf `index` (0 … size; `size` appends a leaf). */
  set(index: number, leaf: Buffer): void {
    if (index > this.size) throw new Error(`Merkle leaf ${index} beyond ${this.size}`);
    this.levels[0]!.put(index, leaf);
    this.dirty.add(index);
  }

  root(): Buffer | null {
    if (this.size === 0) return null;
    let dirty = this.dirty;
    let level = 0;
    for (; this.levels[level]!.length > 1; level++) {
      const nodes = this.levels[level]!;
      const above = (this.levels[level + 1] ??= new Level());
      // A level shrinks only when the tree is rebuilt; here leaves are only set or appended.
      const parents = new Set<number>();
      for (const index of dirty) parents.add(index >> 1);
      for (const parent of parents) {
        above.put(parent, 2 * parent + 1 < nodes.length ? nodes.parentOf(parent) : nodes.get(2 * parent));
      }
      dirty = parents;
    }
    this.levels.length = level + 1;
    this.dirty = new Set();
    return Buffer.from(this.levels[level]!.get(0));
  }

  /** Every node, level by level (the leaves first). */
  nodes(): TreeNode[] {
    this.root();
    return this.levels.flatMap((nodes, level) => Array.from({ length: nodes.length }, (_, index) => ({ level, index, hash: Buffer.from(nodes.get(index)) })));
  }

  /** The sibling hashes from leaf `index` up to the root (after `root()`). */
  path(index: number): MerklePathStep[] {
    this.root();
    const steps: MerklePathStep[] = [];
    for (let level = 0, i = index; level < this.levels.length - 1; level++, i >>= 1) {
      const nodes = this.levels[level]!;
      const sibling = i % 2 === 0 ? i + 1 : i - 1;
      if (sibling < nodes.length) steps.push({ side: i % 2 === 0 ? 'right' : 'left', hash: nodes.get(sibling).toString('hex') });
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

/** The nodes of one level a stored tree is asked for, by index (those it lacks are absent). */
export type FetchLevel = (level: number, indexes: number[]) => Promise<Map<number, Buffer>>;
export type TreeNode = { level: number; index: number; hash: Buffer };

/**
 * The tree of `size` leaves after `changed` leaves were set (new leaves appended at the end included),
 * computed from a stored copy of the tree before: only the paths above the changed leaves are hashed
 * again, their siblings fetched level by level. Returns the new nodes (the changed leaves included) and
 * the root — O(changed × log n) hashes and reads instead of the whole tree.
 */
export async function updatePaths(size: number, changed: Map<number, Buffer>, fetch: FetchLevel): Promise<{ nodes: TreeNode[]; root: Buffer }> {
  if (changed.size === 0) throw new Error('no Merkle leaf changed');
  const nodes: TreeNode[] = [...changed].map(([index, hash]) => ({ level: 0, index, hash }));
  let current = changed;
  let width = size;
  for (let level = 0; width > 1; level++, width = Math.ceil(width / 2)) {
    const parents = new Set<number>();
    for (const index of current.keys()) parents.add(index >> 1);
    const missing: number[] = [];
    for (const parent of parents) for (const child of [2 * parent, 2 * parent + 1]) if (child < width && !current.has(child)) missing.push(child);
    const fetched = missing.length > 0 ? await fetch(level, missing) : new Map<number, Buffer>();
    const child = (index: number) => {
      const hash = current.get(index) ?? fetched.get(index);
      if (!hash) throw new Error(`the stored Merkle tree lacks node ${index} of level ${level}`);
      return hash;
    };
    const next = new Map<number, Buffer>();
    for (const parent of parents) {
      const hash = 2 * parent + 1 < width ? nodeHash(child(2 * parent), child(2 * parent + 1)) : child(2 * parent);
      next.set(parent, hash);
      nodes.push({ level: level + 1, index: parent, hash });
    }
    current = next;
  }
  return { nodes, root: current.get(0)! };
}

/** Every node of the tree over `leaves` (a stored tree written from scratch), and its root. */
export function allNodes(leaves: Buffer[]): { nodes: TreeNode[]; root: Buffer | null } {
  const tree = new MerkleTree();
  leaves.forEach((leaf, i) => tree.set(i, leaf));
  return { root: tree.root(), nodes: tree.nodes() };
}

/** Where the sibling of leaf `index`'s path lies at each level of a tree of `size` leaves, and the root's place. */
export function pathPlaces(
  size: number,
  index: number,
): { siblings: Array<{ level: number; index: number; side: 'left' | 'right' }>; root: { level: number } } {
  const siblings: Array<{ level: number; index: number; side: 'left' | 'right' }> = [];
  let level = 0;
  for (let width = size, i = index; width > 1; level++, width = Math.ceil(width / 2), i >>= 1) {
    const sibling = i % 2 === 0 ? i + 1 : i - 1;
    if (sibling < width) siblings.push({ level, index: sibling, side: i % 2 === 0 ? 'right' : 'left' });
  }
  return { siblings, root: { level } };
}
