/**
 * Verifies a history (issue 16): every stream's hash chain and every anchor, in one pass over NDJSON
 * history lines in log order — an exported file offline (`cli verify --export`), or the store itself
 * (`cli verify --history`, the same lines straight from the database). It stops at the first broken
 * link and names it: line, stream, revision, event id and what differs.
 *
 * Memory is bounded by the number of streams (two heads each, now and as the last anchor covered them,
 * and the Merkle tree over the latter) plus the events since the last anchor's coverage, never by the
 * length of the history.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { JWTVerifyGetKey } from 'jose';
import { AUDIT_STREAM, ANCHOR_EVENT_TYPE, anchorDataSchema, checkAnchorSignature, type AnchorData } from '../audit/anchorRecord.js';
import { leafHash, MerkleTree } from '../audit/merkle.js';
import type { JsonObject } from '../eventStore/eventStore.js';
import { GENESIS_HASH, fastEventHash } from '../eventStore/hashChain.js';
import { lineBatches } from './lineBatches.js';
import { ChangeLog } from './changeLog.js';
import { PackedHeads, StreamHeads } from './streamHeads.js';

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

type Head = { revision: number; hash: string };

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
};

/** One event as the verifier needs it; `content` null when the source database checked its hash. */
type Entry = {
  stream: string;
  revision: number;
  type: string;
  eventId: string;
  prevHash: string | undefined;
  hash: string | undefined;
  content: { data: JsonObject; metadata: JsonObject } | null;
};

export const fileLines = (path: string, { maxLineBytes }: { maxLineBytes?: number } = {}): AsyncGenerator<string[]> =>
  lineBatches(createReadStream(path, { highWaterMark: 1 << 20 }) as Readable & AsyncIterable<Buffer>, maxLineBytes === undefined ? {} : { maxLineBytes });

export type VerifyOptions = {
  anchorKeys?: JWTVerifyGetKey | null;
  onProgress?: (n: number) => void;
  /**
   * The lines come from our own database, which sends a short line (a JSON array) for each row whose
   * hash it recomputed from the stored bytes (verifyStore.ts); never set for a file, whose lines prove
   * nothing by their shape.
   */
  hashesCheckedBySource?: boolean;
};

export async function verifyHistoryLines(
  batches: AsyncIterable<string[]>,
  { anchorKeys = null, onProgress, hashesCheckedBySource = false }: VerifyOptions = {},
): Promise<HistoryVerification & { heads: StreamHeads }> {
  const heads = new StreamHeads();
  // The heads as the last anchor covered them, and the Merkle tree over those: each anchor rolls them
  // forward through the changes up to the last event it covers.
  const anchored = new PackedHeads();
  const tree = new MerkleTree();
  // Each line's effect on the heads since the last anchor's coverage.
  const changes = new ChangeLog();
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
  // Built only when something is wrong (no closure per line: this loop runs once per event).
  const broken = (entry: Entry, message: string) =>
    new Broken({ line: lineNumber, stream: entry.stream, revision: entry.revision, eventId: entry.eventId, message });

  try {
    for await (const batch of batches)
      for (const text of batch) {
        lineNumber += 1;
        const line = hashesCheckedBySource && text.charCodeAt(0) === 0x5b /* [ */ ? parseCheckedLine(text, lineNumber) : parseLine(text, lineNumber);
        const index = heads.indexOf(line.stream);
        const expected = index === undefined ? 0 : heads.revision(index) + 1;
        if (line.revision > expected)
          throw broken(
            line,
            expected === 0
              ? `the stream starts at revision ${line.revision}: revisions 0…${line.revision - 1} are missing`
              : `revision ${expected} is missing: revision ${line.revision} follows ${expected - 1}`,
          );
        if (line.revision < expected) throw broken(line, `revision ${line.revision} again or out of order: the stream is already at revision ${expected - 1}`);
        if (line.prevHash === undefined || line.hash === undefined) throw broken(line, 'the event carries no hash chain link (prev_hash, hash)');
        if (index === undefined ? line.prevHash !== GENESIS_HASH : !heads.hashIs(index, line.prevHash))
          throw broken(
            line,
            `prev_hash ${line.prevHash} does not link to ${index !== undefined ? `revision ${expected - 1}'s hash ${heads.hash(index)}` : 'the genesis hash'}`,
          );
        // The link holds: the line's own prev_hash is the previous head's hash.
        const prev = line.prevHash;
        const hash =
          line.content === null
            ? line.hash
            : fastEventHash(prev, { stream: line.stream, revision: line.revision, type: line.type, data: line.content.data, metadata: line.content.metadata });
        if (hash !== line.hash) throw broken(line, `its content (type, data or metadata) no longer gives its hash: stored ${line.hash}, recomputed ${hash}`);

        const at = heads.move(line.stream, line.revision, hash, index);
        changes.push(lineNumber, line.eventId, at, line.revision, heads);

        if (line.stream === AUDIT_STREAM && line.type === ANCHOR_EVENT_TYPE) {
          anchors += 1;
          const anchor = anchorDataSchema.safeParse(line.content?.data);
          if (!anchor.success)
            throw broken(line, `anchor #${anchors} is malformed (${anchor.error.issues[0]!.path.join('.')}: ${anchor.error.issues[0]!.message})`);
          const fail = (message: string): never => {
            throw broken(line, message);
          };
          const covered = await checkAnchor(anchor.data, anchors, lastAnchorHash, { heads, anchored, tree, changes, anchorKeys }, fail);
          anchoredEvents = covered;
          lastAnchorHash = hash;
          // What the next anchor can look back to: the changes after this one's coverage.
          changes.dropThrough(covered);
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

const lineProblem = (line: number, message: string) => new Broken({ line, stream: null, revision: null, eventId: null, message });

function parseJson(text: string, line: number, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw lineProblem(line, `not a JSON ${what}`);
  }
}

function parseLine(text: string, line: number): Entry {
  const v = parseJson(text, line, 'object') as Partial<Line> | null;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw lineProblem(line, 'not a JSON object');
  if (typeof v.stream_name !== 'string' || !Number.isSafeInteger(v.revision) || typeof v.event_type !== 'string')
    throw lineProblem(line, 'stream_name, revision or event_type missing');
  if (typeof v.data !== 'object' || v.data === null || typeof v.metadata !== 'object' || v.metadata === null)
    throw lineProblem(line, 'data or metadata missing');
  return {
    stream: v.stream_name,
    revision: v.revision!,
    type: v.event_type,
    eventId: String(v.metadata.event_id),
    prevHash: v.prev_hash,
    hash: v.hash,
    content: { data: v.data, metadata: v.metadata },
  };
}

/**
 * The database's short line for a row whose hash it checked (postgresHistory.ts, SHORT_LINE_SQL): a
 * JSON array of prev_hash, hash, event id, revision, type and stream, read by position (the first three
 * have fixed widths) without JSON.parse and its six fresh objects per event; a line with an escape in
 * its strings, or of any other shape, goes through JSON.parse. Slices share the line's memory, so what
 * outlives the line is copied: a new stream's name (StreamHeads) and the event id (ChangeLog).
 */
function parseCheckedLine(text: string, line: number): Entry {
  const n = text.length;
  // ["<prev_hash: 64>","<hash: 64>","<event id: 36>",<revision>,"<type>","<stream>"]
  if (
    n > 180 &&
    text.startsWith('","', 66) &&
    text.startsWith('","', 133) &&
    text.startsWith('",', 172) &&
    text.charCodeAt(1) === QUOTE &&
    text.charCodeAt(n - 2) === QUOTE &&
    text.charCodeAt(n - 1) === 0x5d /* ] */ &&
    text.indexOf('\\', 174) === -1
  ) {
    let revision = 0;
    let i = 174;
    // At most 15 digits here (exact in a double); a longer number goes to JSON.parse and its check.
    for (let c = text.charCodeAt(i); c >= 0x30 && c <= 0x39 && i < 189; c = text.charCodeAt(++i)) revision = 10 * revision + (c - 0x30);
    const typeEnd = text.indexOf('"', i + 2);
    if (i > 174 && text.startsWith(',"', i) && typeEnd !== -1 && text.startsWith('","', typeEnd) && typeEnd + 3 <= n - 2)
      return {
        prevHash: text.slice(2, 66),
        hash: text.slice(69, 133),
        eventId: text.slice(136, 172),
        revision,
        type: text.slice(i + 2, typeEnd),
        stream: text.slice(typeEnd + 3, n - 2),
        content: null,
      };
  }
  const v = parseJson(text, line, 'array') as unknown[];
  if (!Array.isArray(v) || v.length !== 6 || !v.every((field, i) => (i === 3 ? Number.isSafeInteger(field) : typeof field === 'string')))
    throw lineProblem(line, 'not a checked history line');
  const [prevHash, hash, eventId, revision, type, stream] = v as [string, string, string, number, string, string];
  return { stream, revision, type, eventId, prevHash, hash, content: null };
}
const QUOTE = 0x22;

type AnchorState = { heads: StreamHeads; anchored: PackedHeads; tree: MerkleTree; changes: ChangeLog; anchorKeys: JWTVerifyGetKey | null };

/**
 * Checks one anchor against the history before it; returns the number of events it covers. The anchor
 * covers the log up to its last event; events after that (committed while it was being written) are
 * not rolled into the anchored heads yet, so the heads and the tree are those it signed.
 */
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

  const { heads, anchored, tree, changes } = state;
  const at = changes.find(anchor.covers.last_event_id);
  if (at === -1) fail(`${name}: the last event it covers (${anchor.covers.last_event_id}) is not in the history since the previous anchor`);
  const coveredLine = changes.line(at);
  // Roll forward; a stream that moved several times gets one leaf (a Set keeps new streams in index order).
  const moved = new Set<number>();
  for (let i = 0; i <= at; i++) {
    changes.apply(i, anchored);
    moved.add(changes.index(i));
  }
  const headAt = (stream: string): Head | null => {
    const index = heads.indexOf(stream);
    if (index === undefined || index >= anchored.size) return null;
    return { revision: anchored.revision(index), hash: anchored.hash(index) };
  };

  // The streams it lists, by index (a flag each: a Set of names cost a string hash per lookup).
  const listed = new Uint8Array(anchored.size);
  for (const [stream, revision, hash] of anchor.changed) {
    const index = heads.indexOf(stream);
    if (index === undefined || index >= anchored.size || anchored.revision(index) !== revision || !anchored.hashIs(index, hash)) {
      const ours = headAt(stream);
      throw new Broken({
        line: coveredLine,
        stream,
        revision: ours?.revision ?? null,
        eventId: null,
        message: `${name} signed stream ${stream} at revision ${revision} (hash ${hash}); the history has ${ours ? `revision ${ours.revision} (hash ${ours.hash})` : 'no such stream'}`,
      });
    }
    listed[index] = 1;
  }
  for (let i = 0; i <= at; i++) {
    const index = changes.index(i);
    if (listed[index] !== 1) {
      const stream = heads.name(index);
      throw new Broken({
        line: changes.line(i),
        stream,
        revision: headAt(stream)?.revision ?? null,
        eventId: changes.eventId(i),
        message: `${name} does not list this event's stream among those changed since the previous anchor: an event inserted behind the anchor`,
      });
    }
  }
  if (anchor.covers.event_count !== coveredLine)
    fail(`${name} covers ${anchor.covers.event_count} events; the history has ${coveredLine} up to its last event ${anchor.covers.last_event_id}`);

  for (const index of moved) tree.set(index, leafHash({ stream: heads.name(index), revision: anchored.revision(index), hash: anchored.hash(index) }));
  const root = tree.root()?.toString('hex') ?? null;
  if (anchor.streams !== anchored.size) fail(`${name} signed ${anchor.streams} streams; the history has ${anchored.size} at that point`);
  if (root !== anchor.merkle_root) fail(`${name}: Merkle root ${anchor.merkle_root} differs from the history's ${root ?? 'empty'}`);
  return coveredLine;
}
