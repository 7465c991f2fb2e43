/**
 * The hash chain of a history file on import: a line that carries `prev_hash`/`hash` must link to the
 * previous line of its stream and hash to its own content, or the file is refused with that line's
 * number; a line without them (a file exported before the chain existed) gets them computed. Either
 * way every event enters the store with its link, so export → import → export gives the same file.
 */
import { GENESIS_HASH, fastEventHash } from '../eventStore/hashChain.js';
import { HistoryFileError, type HistoryLine } from './historyLine.js';

export type ChainedLine = { number: number; line: HistoryLine & { prev_hash: string; hash: string } };

/** `heads` receives each stream's last hash (the store's head hash after the import). */
export async function* checkHistoryChain(lines: AsyncIterable<{ number: number; line: HistoryLine }>, heads: Map<string, string>): AsyncGenerator<ChainedLine> {
  for await (const { number, line } of lines) {
    const prev = line.revision === 0 ? GENESIS_HASH : (heads.get(line.stream_name) ?? GENESIS_HASH);
    const where = `stream ${line.stream_name} revision ${line.revision} (event ${line.metadata.event_id})`;
    if (line.prev_hash !== undefined && line.prev_hash !== prev)
      throw new HistoryFileError(number, `${where}: prev_hash ${line.prev_hash} does not link to the previous event's hash ${prev}`);
    const hash = fastEventHash(prev, { stream: line.stream_name, revision: line.revision, type: line.event_type, data: line.data, metadata: line.metadata });
    if (line.hash !== undefined && line.hash !== hash) throw new HistoryFileError(number, `${where}: hash ${line.hash} differs from its content's ${hash}`);
    heads.set(line.stream_name, hash);
    yield { number, line: { ...line, prev_hash: prev, hash } };
  }
}
