/**
 * The per-stream hash chain that makes the history tamper-evident (issue 16):
 *
 *   hash = SHA-256(prev_hash ‖ canonical JSON of {stream, revision, type, data, metadata})
 *
 * prev_hash is the 32 bytes of the previous event's hash in the same stream (32 zero bytes before
 * revision 0); the canonical JSON is RFC 8785 (UTF-8). `metadata` is the event's metadata in its stored
 * snake_case form with exactly the seven keys of a history line (a missing key is null), so a hash can be
 * recomputed from an exported line alone, also for rows stored before the snake_case form. Hashes are
 * written as lower-case hex.
 */
import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import type { JsonObject, JsonValue } from './eventStore.js';

type Canonicalize = (input: unknown) => string | undefined;
// A CommonJS package whose typings declare an ES default export: at run time the import is the function.
const canonicalize = ((canonicalizeModule as unknown as { default?: Canonicalize }).default ?? canonicalizeModule) as unknown as Canonicalize;

export const GENESIS_HASH = '0'.repeat(64);
export const HASH_PATTERN = /^[0-9a-f]{64}$/;

export type ChainedContent = { stream: string; revision: number | bigint; type: string; data: JsonObject; metadata: JsonObject };

const METADATA_KEYS = ['event_id', 'correlation_id', 'causation_id', 'user_id', 'client_id', 'occurred_at', 'schema_version'] as const;

/** The metadata as hashed: the history line's seven snake_case keys, whichever form the row has. */
export function hashedMetadata(stored: unknown): JsonObject {
  const value = (typeof stored === 'object' && stored !== null && !Array.isArray(stored) ? stored : {}) as Record<string, JsonValue | undefined>;
  const camel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const out: JsonObject = {};
  for (const key of METADATA_KEYS) out[key] = value[key] ?? value[camel(key)] ?? null;
  return out;
}

/** The canonical JSON of one event through the RFC 8785 library (the reference implementation here). */
export function canonicalEventJson(content: ChainedContent): string {
  const { stream, revision, type, data, metadata } = content;
  return canonicalize({ stream, revision: Number(revision), type, data, metadata })!;
}

export function chainHash(prevHash: string, canonicalJson: string): string {
  return createHash('sha256').update(Buffer.from(prevHash, 'hex')).update(canonicalJson, 'utf8').digest('hex');
}

export const eventHash = (prevHash: string, content: ChainedContent): string => chainHash(prevHash, canonicalEventJson(content));

const KEY_CACHE = new Map<string, string>();
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
const quote = (text: string) => (NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`);

/**
 * Whether JSON.stringify writes `value` in canonical form already: every object's keys enumerate in
 * UTF-16 order (JSON parsed from canonical text keeps them so; integer-like keys enumerate first, in
 * numeric order, and fail the test when that is not their UTF-16 order), every number is finite and
 * nothing has a toJSON. Strings and numbers are then written alike: RFC 8785 takes both from ECMAScript.
 */
function stringifiesCanonically(value: JsonValue | undefined): boolean {
  if (typeof value !== 'object' || value === null) return typeof value !== 'number' || Number.isFinite(value);
  if (Array.isArray(value)) {
    for (const item of value) if (!stringifiesCanonically(item)) return false;
    return true;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  // The object's own key order first: data built in code (every append) fails here, before its members are walked.
  const keys = Object.keys(value);
  for (let i = 1; i < keys.length; i++) if (!(keys[i - 1]! < keys[i]!)) return false;
  return keys.every((key) => stringifiesCanonically(value[key]));
}

/**
 * RFC 8785 canonical JSON of a parsed JSON value, written for bulk verification (history verify, import),
 * where the library's reduce-and-concatenate form costs half the time budget. A value already in
 * canonical order (every event of an exported history) is written by JSON.stringify after one walk
 * that checks it (an exported history of 200k events: 7.5 → 3.2 s to check its chain in Node).
 * It must give exactly the library's output: test/audit/canonicalJson.test.ts compares both on
 * arbitrary JSON, in canonical order and not.
 */
export function fastCanonicalJson(value: JsonValue): string {
  return stringifiesCanonically(value) ? JSON.stringify(value) : canonicalJsonOf(value);
}

function canonicalJsonOf(value: JsonValue): string {
  if (value === null) return 'null';
  // As JSON.stringify and the library do: a value with toJSON (a Date in data built in code) is what it returns.
  if (typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function')
    return canonicalJsonOf((value as unknown as { toJSON(): JsonValue }).toJSON());
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      if (!Number.isFinite(value)) throw new Error('non-finite number in JSON');
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i ? ',' : '') + canonicalJsonOf(value[i] ?? null);
    return `${out}]`;
  }
  // Default sort compares UTF-16 code units, as RFC 8785 requires.
  const keys = Object.keys(value).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const member = value[key];
    if (member === undefined) continue;
    let quoted = KEY_CACHE.get(key);
    if (quoted === undefined) {
      quoted = quote(key);
      if (KEY_CACHE.size < 10_000) KEY_CACHE.set(key, quoted);
    }
    out += `${first ? '' : ','}${quoted}:${canonicalJsonOf(member)}`;
    first = false;
  }
  return `${out}}`;
}

/** The hash from the canonical texts of data and hashed metadata; the five keys written in their sorted order. */
const hashOfTexts = (prevHash: string, stream: string, revision: number | bigint, type: string, data: string, metadata: string) =>
  chainHash(prevHash, `{"data":${data},"metadata":${metadata},"revision":${String(Number(revision))},"stream":${quote(stream)},"type":${quote(type)}}`);

/** Same as eventHash, through fastCanonicalJson (bulk paths). */
export const fastEventHash = (prevHash: string, { stream, revision, type, data, metadata }: ChainedContent): string =>
  hashOfTexts(prevHash, stream, revision, type, fastCanonicalJson(data), fastCanonicalJson(metadata));

/**
 * An event as the store writes it: data and stored metadata as canonical JSON text (the `json` columns
 * keep the text as given, so the stored bytes are what the hash covers), and its chain link.
 */
export type CanonicalEvent = { data: string; metadata: string; prevHash: string; hash: string };

/** The canonical texts and chain link of one event whose stored metadata is `storedMetadata`. */
export function canonicalEvent(
  prevHash: string,
  stream: string,
  revision: number | bigint,
  type: string,
  data: JsonObject,
  storedMetadata: JsonObject,
): CanonicalEvent {
  const dataText = fastCanonicalJson(data);
  const metadataText = fastCanonicalJson(storedMetadata);
  // Hashed metadata has all seven keys (missing ones as null): the stored text is it when none is missing.
  const complete = METADATA_KEYS.every((key) => storedMetadata[key] !== undefined) && Object.keys(storedMetadata).length === METADATA_KEYS.length;
  const hashedText = complete ? metadataText : fastCanonicalJson(hashedMetadata(storedMetadata));
  return { data: dataText, metadata: metadataText, prevHash, hash: hashOfTexts(prevHash, stream, revision, type, dataText, hashedText) };
}

/** Canonical texts and hashes for events appended after `prevHash` (null: a new stream), from `firstRevision`. */
export function chainAppend(
  stream: string,
  firstRevision: bigint,
  prevHash: string | null,
  events: ReadonlyArray<{ type: string; data: JsonObject; metadata: JsonObject }>,
): CanonicalEvent[] {
  let prev = prevHash ?? GENESIS_HASH;
  return events.map((event, i) => {
    const link = canonicalEvent(prev, stream, firstRevision + BigInt(i), event.type, event.data, event.metadata);
    prev = link.hash;
    return link;
  });
}
