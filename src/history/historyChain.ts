/**
 * The hash chain of a history file on import: a line that carries `prev_hash`/`hash` must link to the
 * previous line of its stream and hash to its own content, or the file is refused with that line's
 * number; a line without them (a file exported before the chain existed) gets them computed. Either
 * way every event enters the store with its link, so export → import → export gives the same file.
 */
import { GENESIS_HASH, canonicalEvent } from '../eventStore/hashChain.js';
import { HistoryFileError, type HistoryLine } from './historyLine.js';

/** A checked line, with the canonical texts of its data and metadata (what the store keeps). */
export type ChainedLine = { number: number; line: HistoryLine & { prev_hash: string; hash: string }; data: string; metadata: string };

/**
 * Canonical JSON writes a NUL and an unpaired surrogate as \u escapes (paired surrogates as the
 * characters): such an escape not itself escaped. The json columns would keep them; the command path
 * refuses them (src/domain/shared/jsonText.ts), so a history must too.
 */
const UNSTORABLE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f])/;

/**
 * Checks each line's hash against its content and its own prev_hash; that prev_hash is the previous
 * line's hash of the stream is checked by the database after the load (postgresHistory.ts), so a
 * chained file needs no memory per stream. A file without hashes (all of its lines, decided by the
 * first) is chained here, remembering each stream's last hash.
 */
export async function* checkHistoryChain(lines: AsyncIterable<{ number: number; line: HistoryLine }>): AsyncGenerator<ChainedLine> {
  let chained: boolean | undefined;
  const heads = new Map<string, string>();
  for await (const { number, line } of lines) {
    const hasLink = line.prev_hash !== undefined && line.hash !== undefined;
    chained ??= hasLink;
    if (chained !== hasLink)
      throw new HistoryFileError(
        number,
        chained ? "prev_hash and hash missing (the file's first line carries them)" : "prev_hash and hash present (the file's first line has none)",
      );
    const prev = line.prev_hash ?? (line.revision === 0 ? GENESIS_HASH : (heads.get(line.stream_name) ?? GENESIS_HASH));
    // The line's metadata is the stored form already (exactly its seven keys).
    const { hash, data, metadata } = canonicalEvent(prev, line.stream_name, line.revision, line.event_type, line.data, line.metadata);
    if (UNSTORABLE_ESCAPE.test(data) || UNSTORABLE_ESCAPE.test(metadata))
      throw new HistoryFileError(number, 'data or metadata holds a NUL character or an unpaired UTF-16 surrogate (text no read model can store)');
    if (line.hash !== undefined && line.hash !== hash)
      throw new HistoryFileError(
        number,
        `stream ${line.stream_name} revision ${line.revision} (event ${line.metadata.event_id}): hash ${line.hash} differs from its content's ${hash}`,
      );
    if (!chained) heads.set(line.stream_name, hash);
    yield { number, line: { ...line, prev_hash: prev, hash }, data, metadata };
  }
}
