/**
 * fast-check arbitraries for requests an attacker would send: path segments, query strings, headers
 * and bodies, each mixing ordinary values with the classes that once answered 500 (NUL, lone
 * surrogates, invalid UTF-8, malformed percent-encoding, broken compressed bodies, deep JSON).
 */
import { deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { searchDeviceDispensesQuerySchema } from '../../src/queries/deviceDispenses.js';
import { listLicensesQuerySchema } from '../../src/queries/licenses.js';
import { historyQuerySchema, streamEventsQuerySchema } from '../../src/queries/audit.js';
import { createBody, ids } from './fixtures.js';
import { createLicenseBody } from '../licenses/helpers.js';

/** `arbitrary` in one case out of `oneIn`, else null (fc.option's freq is the other way round). */
const sometimes = <T>(arbitrary: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | null> =>
  fc.oneof({ weight: 1, arbitrary }, { weight: oneIn - 1, arbitrary: fc.constant(null) });

/** Text PostgreSQL cannot store (NUL in text/jsonb, unpaired surrogates in jsonb). */
const unstorable = fc.constantFrom('\u0000', '\ud800', '\udfff', '\udc00\ud800', 'x\ud83d');

/** Text PostgreSQL cannot store, and other awkward characters. */
const nastyText = fc.constantFrom(
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff',
  'x\ud83d',
  '\ud83d\ude00',
  '\u202e',
  '\uffff',
  '\ufeff',
  '\n',
  '\t',
  "'; drop table events; --",
  '%00',
  '../..',
  '$where',
  '{"$gt": ""}',
);

/** Strings: ordinary (any UTF-16, which includes lone surrogates), or one of the nasty ones. */
export const anyText = fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }), fc.string({ maxLength: 20 }), nastyText, fc.constant(''));

/** Raw percent sequences that are not valid UTF-8 or not valid escapes at all. */
const badEscapes = fc.constantFrom('%', '%G0', '%E0%A4%A', '%FF', '%C3%28', '%00', '%ED%A0%80', '%F4%90%80%80', '%C0%AF', '%2', '%%', '%u0041');

const encode = (text: string): string => {
  try {
    return encodeURIComponent(text);
  } catch {
    return '%ED%A0%80'; // a lone surrogate cannot be encoded: send its (invalid) UTF-8 bytes
  }
};

/** An additional licence of the fixture legal entity that the fuzz reference data imports, so PATCH reaches its store. */
export const FUZZ_ADDITIONAL_LICENSE = '00000000-0000-4000-8000-000000000f01';

/** A path segment as it travels: a real id, encoded text, or bad escapes (possibly around text). */
export const pathSegment = fc
  .oneof(
    { weight: 3, arbitrary: fc.constantFrom(ids.patient, ids.primaryLicense, FUZZ_ADDITIONAL_LICENSE, '00000000-0000-4000-8000-000000000000') },
    // A reference kind, so the batch routes reach their NDJSON reader.
    { weight: 1, arbitrary: fc.constant('users') },
    { weight: 3, arbitrary: fc.uuid() },
    { weight: 3, arbitrary: anyText.map(encode) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(fc.string({ unit: 'grapheme-ascii', maxLength: 5 }).map(encode), badEscapes, fc.string({ maxLength: 3 }).map(encode))
        .map((parts) => parts.join('')),
    },
  )
  .filter((segment) => segment !== '' && segment !== '.' && segment !== '..');

const QUERY_NAMES = [
  ...Object.keys(searchDeviceDispensesQuerySchema.shape),
  ...Object.keys(listLicensesQuerySchema.shape),
  ...Object.keys(streamEventsQuerySchema.shape),
  ...Object.keys(historyQuerySchema.shape),
  'as_of',
];

const queryValue = fc.oneof(
  anyText.map(encode),
  badEscapes,
  fc.constantFrom(
    '2024-02-30',
    '2024-02-29',
    '2024-13-01',
    '2026-11-23T10:00:00Z',
    '2024-02-30T10:00:00Z',
    '-1',
    '0',
    '1',
    '300',
    '301',
    '1e309',
    'NaN',
    'true',
    'null',
  ),
  fc.integer().map(String),
);

/** A query string (without '?'): known and unknown names, repeated names, bad values. */
export const queryString = fc
  .array(fc.tuple(fc.oneof(fc.constantFrom(...QUERY_NAMES), anyText.map(encode), badEscapes), queryValue, fc.boolean()), { maxLength: 4 })
  .map((pairs) => pairs.map(([name, value, withValue]) => (withValue ? `${name}=${value}` : name)).join('&'));

/** Numbers past the range of the parameter's type (64- and 32-bit, beyond 2^53, exponent forms). */
const overflowNumber = fc.constantFrom(
  '99999999999999999999',
  '-99999999999999999999',
  '9223372036854775807',
  '9223372036854775808',
  '-9223372036854775809',
  '18446744073709551616',
  '2147483648',
  '4294967296',
  '9007199254740993',
  '1e21',
  '1' + '0'.repeat(400),
);
/** Checkpoints (`<xid>:<position>`) with a part past bigint's range, or near it. */
const overflowCheckpoint = fc
  .tuple(fc.oneof(overflowNumber, fc.constantFrom('0', '1', '-1')), fc.oneof(overflowNumber, fc.constantFrom('0', '1', '-1')))
  .map(([xid, position]) => `${xid}:${position}`);
/** The paging and checkpoint parameters of every route's query schema. */
const RANGE_NAMES = ['page', 'page_size', 'limit', 'after'];

/** A query string whose paging/checkpoint parameters overflow their type's range (and maybe one ordinary pair). */
export const overflowQuery = fc
  .tuple(
    fc.array(fc.tuple(fc.constantFrom(...RANGE_NAMES), fc.oneof(overflowNumber, overflowCheckpoint)), { minLength: 1, maxLength: 3 }),
    fc.option(fc.tuple(fc.constantFrom(...QUERY_NAMES), queryValue), { freq: 3 }),
  )
  .map(([pairs, extra]) => [...pairs.map(([name, value]) => `${name}=${encodeURIComponent(value)}`), ...(extra ? [`${extra[0]}=${extra[1]}`] : [])].join('&'));

/** Byte sequences that are not UTF-8: a lone 0xFF, a broken 2-byte sequence, an encoded surrogate, past U+10FFFF, overlong, truncated. */
export const INVALID_UTF8: readonly Buffer[] = [
  [0xff],
  [0xc3, 0x28],
  [0xed, 0xa0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xc0, 0xaf],
  [0xe0, 0xa4],
  [0xfe, 0xfe],
].map((bytes) => Buffer.from(bytes));
const invalidUtf8 = fc.constantFrom(...INVALID_UTF8);

/** `bytes` inserted right after the `nth` double quote of `text` (inside a key or a string value), or at the end. */
export function withBytesInString(text: Buffer, bytes: Buffer, nth: number): Buffer {
  const quotes: number[] = [];
  for (let i = 0; i < text.length; i += 1) if (text[i] === 0x22) quotes.push(i + 1);
  const at = quotes.length === 0 ? text.length : quotes[nth % quotes.length]!;
  return Buffer.concat([text.subarray(0, at), bytes, text.subarray(at)]);
}

/** The body an endpoint expects, so a mutation reaches the checks behind the schema. */
export const validBody = (route: string): Record<string, unknown> | null => {
  if (route.endsWith('/device_dispenses')) return createBody(ids.patient);
  if (route.endsWith('/complete') || route.endsWith('/mark_in_error')) return { signed_data: 'eyJhbGciOiJFUzI1NiJ9.e30.c2ln' };
  if (route === '/api/licenses') return createLicenseBody();
  if (route === '/api/licenses/:id') return { is_primary: false, order_no: 'ORD-1' };
  return null;
};

/** Every path to a leaf of a JSON value. */
function leafPaths(value: unknown, path: Array<string | number> = []): Array<Array<string | number>> {
  if (Array.isArray(value)) return value.flatMap((item, i) => leafPaths(item, [...path, i]));
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([key, inner]) => leafPaths(inner, [...path, key]));
  return [path];
}

function replaceAt(value: unknown, path: Array<string | number>, replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  const copy = (Array.isArray(value) ? [...value] : { ...(value as Record<string, unknown>) }) as Record<string | number, unknown>;
  copy[head!] = replaceAt(copy[head!], rest, replacement);
  return copy;
}

const deepJson = fc.integer({ min: 20, max: 3000 }).map((depth) => JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`) as unknown);
const leafValue = fc.oneof(
  anyText,
  fc.jsonValue({ maxDepth: 2 }),
  deepJson,
  fc.constantFrom('2024-02-30', '2023-02-29', 1e308, -0, Number.MAX_SAFE_INTEGER + 2),
);

/** A JSON document: the route's own body with one leaf replaced (or a key added), or anything at all. */
export const jsonBody = (route: string) => {
  const base = validBody(route);
  const anything = fc.oneof(fc.jsonValue({ maxDepth: 3 }), anyText, deepJson);
  if (!base) return anything;
  const paths = leafPaths(base);
  const textPaths = paths.filter((path) => typeof path.reduce<unknown>((value, key) => (value as Record<string | number, unknown>)[key], base) === 'string');
  const textAt = (path: Array<string | number>) => String(path.reduce<unknown>((value, key) => (value as Record<string | number, unknown>)[key], base));
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(base as unknown) },
    // Hostile text inside a string the schema accepts as free text: it must not reach a store.
    {
      weight: 4,
      arbitrary: fc
        .tuple(fc.constantFrom(...textPaths), unstorable, fc.boolean())
        .map(([path, text, append]) => replaceAt(base, path, append ? `${textAt(path)}${text}` : text)),
    },
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...paths), leafValue).map(([path, value]) => replaceAt(base, path, value)) },
    { weight: 1, arbitrary: fc.tuple(fc.oneof(anyText, unstorable), leafValue).map(([key, value]) => ({ ...base, [key]: value }) as unknown) },
    { weight: 1, arbitrary: anything },
  );
};

export type Encoding = 'none' | 'gzip' | 'deflate' | 'gzip-broken' | 'deflate-broken' | 'br-broken' | 'compress';
export type RawBody = { bytes: Buffer | null; contentType: string | null; contentEncoding: string | null };

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/merge-patch+json',
  'application/JSON',
];

/** What goes on the wire: JSON text (or garbage), a content type, maybe compressed (or broken). */
export const rawBody = (route: string): fc.Arbitrary<RawBody> =>
  fc
    .record({
      document: jsonBody(route),
      garbage: sometimes(fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('{"a":', '{"a":"\\u00"}', '\u00ff\u00fe{}', '[1,]', '{"a":1}{"b":2}')), 6),
      contentType: sometimes(fc.constantFrom(...CONTENT_TYPES), 4),
      encoding: fc.oneof(
        { weight: 6, arbitrary: fc.constant<Encoding>('none') },
        { weight: 4, arbitrary: fc.constantFrom<Encoding>('gzip', 'deflate', 'gzip-broken', 'deflate-broken', 'br-broken', 'compress') },
      ),
      empty: fc.integer({ min: 0, max: 9 }).map((n) => n === 0), // one body in ten is absent
      // Bytes that are not UTF-8, inside a string of the JSON text (one body in five).
      notUtf8: sometimes(fc.tuple(invalidUtf8, fc.nat()), 5),
    })
    .map(({ document, garbage, contentType, encoding, empty, notUtf8 }) => {
      if (empty && garbage === null) return { bytes: null, contentType, contentEncoding: null };
      const json = Buffer.from(garbage ?? JSON.stringify(document) ?? 'null');
      const text = notUtf8 ? withBytesInString(json, notUtf8[0], notUtf8[1]) : json;
      const bytes =
        encoding === 'gzip'
          ? gzipSync(text)
          : encoding === 'deflate'
            ? deflateSync(text)
            : encoding.endsWith('-broken')
              ? Buffer.concat([Buffer.from([0x1f, 0x8b]), text])
              : text;
      const contentEncoding = encoding === 'none' ? null : encoding.replace('-broken', '');
      return { bytes, contentType: contentType ?? 'application/json', contentEncoding };
    });

/** The reference batch body limit the fuzz server runs with (REFERENCE_BATCH_BODY_LIMIT), so oversized lines and bodies stay cheap. */
export const FUZZ_REFERENCE_BATCH_LIMIT_BYTES = 256 * 1024;

/** One reference record (random ids only: nothing the fixtures rely on is overwritten), as such or as `{kind, record}`. */
const referenceLine = fc
  .tuple(fc.record({ id: fc.uuid(), version: fc.integer({ min: -1, max: 3 }), party_id: fc.uuid(), name: anyText }), fc.boolean())
  .map(([record, wrapped]) => JSON.stringify(wrapped ? { kind: 'users', record } : record));

/** NDJSON lines: records, broken lines, and lines far longer than any record (up to past the body limit). */
const ndjsonLine = fc.oneof(
  { weight: 4, arbitrary: referenceLine },
  {
    weight: 2,
    arbitrary: fc.integer({ min: 1024, max: FUZZ_REFERENCE_BATCH_LIMIT_BYTES + 4096 }).map((n) => JSON.stringify({ id: 'x'.repeat(n), version: 1 })),
  },
  { weight: 1, arbitrary: fc.integer({ min: 1024, max: FUZZ_REFERENCE_BATCH_LIMIT_BYTES + 4096 }).map((n) => 'a'.repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '{', 'null', '[]', '{"kind":"users"}', '{"kind":"nope","record":{}}', '\u0000') },
);

/** A reference batch on the wire: NDJSON (maybe CRLF, maybe with bytes that are not UTF-8), usually as application/x-ndjson. */
export const ndjsonBody: fc.Arbitrary<RawBody> = fc
  .record({
    lines: fc.array(ndjsonLine, { maxLength: 5 }),
    crlf: fc.boolean(),
    notUtf8: sometimes(fc.tuple(invalidUtf8, fc.nat()), 4),
    contentType: fc.constantFrom('application/x-ndjson', 'application/x-ndjson', 'application/x-ndjson; charset=utf-8', 'application/json', 'text/plain'),
  })
  .map(({ lines, crlf, notUtf8, contentType }) => {
    const text = Buffer.from(lines.join(crlf ? '\r\n' : '\n'));
    return { bytes: notUtf8 ? withBytesInString(text, notUtf8[0], notUtf8[1]) : text, contentType, contentEncoding: null };
  });

/** Header values Node will send (latin-1 without control characters). */
const headerText = fc.string({ unit: 'binary-ascii', maxLength: 40 }).map((text) => text.replace(/[\u0000-\u001f\u007f]/g, ''));

export type FuzzHeaders = {
  /** `not-employed`: a dismissed employee's token with every MIS scope (a caller outside the employee class). */
  auth: 'good' | 'none' | 'garbage' | 'read-only' | 'not-employed';
  idempotencyKey: string | null;
  ifNoneMatch: string | null;
  host: string | null;
  requestId: string | null;
  origin: string | null;
};

export const headers: fc.Arbitrary<FuzzHeaders> = fc.record({
  auth: fc.constantFrom<FuzzHeaders['auth']>('good', 'good', 'good', 'good', 'none', 'garbage', 'read-only', 'not-employed'),
  idempotencyKey: sometimes(fc.oneof(headerText, fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 300 })), 4),
  ifNoneMatch: sometimes(fc.constantFrom('*', '"x"', 'W/"1"', 'garbage'), 4),
  host: sometimes(fc.constantFrom('evil.example.net', 'localhost:1', 'a'.repeat(200)), 3),
  requestId: sometimes(headerText, 3),
  origin: sometimes(fc.constantFrom('https://evil.example.net', 'null'), 4),
});
