/**
 * Verifies a history (issue 16): every stream's hash chain and every anchor, in one pass over NDJSON
 * history lines in log order — an exported file offline (`cli verify --export`), or the store itself
 * (`cli verify --history`, the same lines straight from the database). It stops at the first broken
 * link and names it: line, stream, revision, event id and what differs.
 *
 * Memory is bounded by the number of streams (one head each, and the Merkle tree over them) plus the
 * events since the last anchor, never by the length of the history.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { JWTVerifyGetKey } from 'jose';
import { AUDIT_STREAM, ANCHOR_EVENT_TYPE, anchorDataSchema, checkAnchorSignature, type AnchorData } from '../audit/anchorRecord.js';
import { leafHash, MerkleTree } from '../audit/merkle.js';
import type { JsonObject } from '../eventStore/eventStore.js';
import { GENESIS_HASH, fastEventHash } from '../eventStore/hashChain.js';

export type HistoryProblem = { line: number; stream: string | null; revision: number | null; eventId: string | null; message: string };
export type HistoryVerification = {
  events: number;
  streams: number;
  anchors: number;
  /** false when no anchor key was given: anchors were checked against the history, not their signatures. */
  signaturesChecked: boolean;
  /** The last anchor covers this many events of `events` (the rest is protected by the chains only). */
  anchoredEvents: number;
  problem: HistoryProblem | null;
};

type Head = { index: number; revision: number; hash: string };
/** One line's effect on the heads, kept since the last anchor's coverage so an anchor can look back. */
type Change = { line: number; eventId: string; stream: string; before: Head | null };

class Broken extends Error {
  constructor(readonly problem: HistoryProblem) {
    super(problem.message);
  }
}

type Line = {
  stream_name: string;
  revision: number;
  event_type: string;
  data: JsonObject;
  metadata: JsonObject;
  prev_hash?: string;
  hash?: string;
  hash_checked?: boolean;
};

/** Splits a byte stream into lines, pulling (so a slow verifier holds the producer back). */
export async function* linesOf(input: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  let rest = '';
  // A chunk may end inside a multi-byte character: the decoder keeps its first bytes for the next one.
  const decoder = new StringDecoder('utf8');
  for await (const chunk of input) {
    const text = rest + (typeof chunk === 'string' ? chunk : decoder.write(chunk));
    const lines = text.split('\n');
    rest = lines.pop()!;
    yield* lines;
  }
  if (rest !== '') yield rest;
}

export const fileLines = (path: string): AsyncGenerator<string> =>
  linesOf(createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 }) as Readable & AsyncIterable<string>);

export type VerifyOptions = {
  anchorKeys?: JWTVerifyGetKey | null;
  onProgress?: (n: number) => void;
  /**
   * The lines come from our own database, which marks `hash_checked` the rows whose hash it recomputed
   * from their stored bytes (verifyStore.ts); never set for a file, whose lines prove nothing by saying so.
   */
  hashesCheckedBySource?: boolean;
};

export async function verifyHistoryLines(
  lines: AsyncIterable<string>,
  { anchorKeys = null, onProgress, hashesCheckedBySource = false }: VerifyOptions = {},
): Promise<HistoryVerification & { heads: Map<string, Head> }> {
  const heads = new Map<string, Head>();
  const tree = new MerkleTree();
  const dirty = new Set<string>();
  let changes: Change[] = [];
  let lineNumber = 0;
  let anchors = 0;
  let anchoredEvents = 0;
  let lastAnchorHash: string | null = null;
  let reported = 0;
  const result = (problem: HistoryProblem | null) => ({
    events: lineNumber,
    streams: heads.size,
    anchors,
    anchoredEvents,
    signaturesChecked: anchorKeys !== null,
    problem,
    heads,
  });

  try {
    for await (const text of lines) {
      lineNumber += 1;
      const line = parseLine(text, lineNumber);
      const at = { line: lineNumber, stream: line.stream_name, revision: line.revision, eventId: String(line.metadata.event_id) };
      const fail = (message: string): never => {
        throw new Broken({ ...at, message });
      };
      const head = heads.get(line.stream_name) ?? null;
      const expected = head ? head.revision + 1 : 0;
      if (line.revision > expected)
        fail(
          expected === 0
            ? `the stream starts at revision ${line.revision}: revisions 0…${line.revision - 1} are missing`
            : `revision ${expected} is missing: revision ${line.revision} follows ${head!.revision}`,
        );
      if (line.revision < expected) fail(`revision ${line.revision} again or out of order: the stream is already at revision ${expected - 1}`);
      const prev = head?.hash ?? GENESIS_HASH;
      if (line.prev_hash === undefined || line.hash === undefined) fail('the event carries no hash chain link (prev_hash, hash)');
      if (line.prev_hash !== prev)
        fail(`prev_hash ${line.prev_hash} does not link to ${head ? `revision ${head.revision}'s hash ${prev}` : 'the genesis hash'}`);
      const hash =
        hashesCheckedBySource && line.hash_checked === true && line.hash !== undefined
          ? line.hash
          : fastEventHash(prev, { stream: line.stream_name, revision: line.revision, type: line.event_type, data: line.data, metadata: line.metadata });
      if (hash !== line.hash) fail(`its content (type, data or metadata) no longer gives its hash: stored ${line.hash}, recomputed ${hash}`);

      const next: Head = { index: head?.index ?? heads.size, revision: line.revision, hash };
      heads.set(line.stream_name, next);
      // Leaves are hashed when an anchor needs the root (insertion order keeps new leaves in index order).
      dirty.add(line.stream_name);
      changes.push({ line: lineNumber, eventId: at.eventId, stream: line.stream_name, before: head });

      if (line.stream_name === AUDIT_STREAM && line.event_type === ANCHOR_EVENT_TYPE) {
        anchors += 1;
        const anchor = anchorDataSchema.safeParse(line.data);
        if (!anchor.success) fail(`anchor #${anchors} is malformed (${anchor.error.issues[0]!.path.join('.')}: ${anchor.error.issues[0]!.message})`);
        for (const stream of dirty) {
          const { index, revision, hash: leaf } = heads.get(stream)!;
          tree.set(index, leafHash({ stream, revision, hash: leaf }));
        }
        dirty.clear();
        const covered = await checkAnchor(anchor.data!, anchors, lastAnchorHash, { heads, tree, changes, anchorKeys }, fail);
        anchoredEvents = covered;
        lastAnchorHash = hash;
        // What the next anchor can look back to: the changes after this one's coverage.
        changes = changes.filter((c) => c.line > covered);
      }
      if (onProgress && lineNumber - reported >= 10_000) {
        onProgress(lineNumber - reported);
        reported = lineNumber;
      }
    }
  } catch (error) {
    if (error instanceof Broken) return result(error.problem);
    throw error;
  }
  if (onProgress && lineNumber > reported) onProgress(lineNumber - reported);
  return result(null);
}

function parseLine(text: string, line: number): Line {
  const fail = (message: string): never => {
    throw new Broken({ line, stream: null, revision: null, eventId: null, message });
  };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    fail('not a JSON object');
  }
  const v = value as Partial<Line> | null;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail('not a JSON object');
  if (typeof v.stream_name !== 'string' || !Number.isSafeInteger(v.revision) || typeof v.event_type !== 'string')
    fail('stream_name, revision or event_type missing');
  if (typeof v.data !== 'object' || v.data === null || typeof v.metadata !== 'object' || v.metadata === null) fail('data or metadata missing');
  return v as Line;
}

type AnchorState = { heads: Map<string, Head>; tree: MerkleTree; changes: Change[]; anchorKeys: JWTVerifyGetKey | null };

/** Checks one anchor against the history before it; returns the number of events it covers. */
async function checkAnchor(
  anchor: AnchorData,
  n: number,
  lastAnchorHash: string | null,
  state: AnchorState,
  fail: (message: string) => never,
): Promise<number> {
  const name = `anchor #${n}`;
  const signature = await checkAnchorSignature(anchor, state.anchorKeys);
  if (signature) fail(`${name}: ${signature}`);
  if (anchor.prev_anchor_hash !== lastAnchorHash)
    fail(`${name}: prev_anchor_hash ${anchor.prev_anchor_hash ?? 'null'} is not the previous anchor's hash ${lastAnchorHash ?? 'null'}`);

  // The anchor covers the log up to its last event; events after that (committed while it was being
  // written) are taken back, newest first, to see the heads it signed.
  const at = state.changes.findIndex((c) => c.eventId === anchor.covers.last_event_id);
  if (at === -1) fail(`${name}: the last event it covers (${anchor.covers.last_event_id}) is not in the history since the previous anchor`);
  const coveredLine = state.changes[at]!.line;
  const view = new Map<string, Head | null>();
  for (let i = state.changes.length - 1; i > at; i--) view.set(state.changes[i]!.stream, state.changes[i]!.before);
  const headAt = (stream: string) => (view.has(stream) ? view.get(stream)! : (state.heads.get(stream) ?? null));

  const signedChanged = new Set<string>();
  for (const [stream, revision, hash] of anchor.changed) {
    signedChanged.add(stream);
    const ours = headAt(stream);
    if (!ours || ours.revision !== revision || ours.hash !== hash)
      throw new Broken({
        line: coveredLine,
        stream,
        revision: ours?.revision ?? null,
        eventId: null,
        message: `${name} signed stream ${stream} at revision ${revision} (hash ${hash}); the history has ${ours ? `revision ${ours.revision} (hash ${ours.hash})` : 'no such stream'}`,
      });
  }
  for (const change of state.changes.slice(0, at + 1))
    if (!signedChanged.has(change.stream))
      throw new Broken({
        line: change.line,
        stream: change.stream,
        revision: headAt(change.stream)?.revision ?? null,
        eventId: change.eventId,
        message: `${name} does not list this event's stream among those changed since the previous anchor: an event inserted behind the anchor`,
      });
  if (anchor.covers.event_count !== coveredLine)
    fail(`${name} covers ${anchor.covers.event_count} events; the history has ${coveredLine} up to its last event ${anchor.covers.last_event_id}`);

  const root = rootAt(state, view);
  const streams = countStreamsAt(state, view);
  if (anchor.streams !== streams) fail(`${name} signed ${anchor.streams} streams; the history has ${streams} at that point`);
  if (root !== anchor.merkle_root) fail(`${name}: Merkle root ${anchor.merkle_root} differs from the history's ${root ?? 'empty'}`);
  return coveredLine;
}

const countStreamsAt = (state: AnchorState, view: Map<string, Head | null>) => state.heads.size - [...view.values()].filter((h) => h === null).length;

/**
 * The root over the heads as the anchor saw them: the live tree, or (events after it) the tree rolled
 * back for the moment — the leaves of streams that moved since set to their heads then, the streams that
 * appeared since (the last leaves, by first appearance) left out — and rolled forward again. Rebuilding
 * the tree from scratch instead cost a hash per stream for every such anchor.
 */
function rootAt(state: AnchorState, view: Map<string, Head | null>): string | null {
  if (view.size === 0) return state.tree.root()?.toString('hex') ?? null;
  const restore: Array<[number, Buffer]> = [];
  for (const [stream, before] of view) {
    if (before === null) continue;
    const now = state.heads.get(stream)!;
    restore.push([now.index, leafHash({ stream, revision: now.revision, hash: now.hash })]);
    state.tree.set(before.index, leafHash({ stream, revision: before.revision, hash: before.hash }));
  }
  const root = state.tree.rootOfFirst(countStreamsAt(state, view));
  for (const [index, leaf] of restore) state.tree.set(index, leaf);
  return root?.toString('hex') ?? null;
}
