/**
 * The lines of a byte stream, a chunk's worth at a time (one await per chunk, not per line), pulled so a
 * slow consumer holds the producer back. The bytes are split first (memchr) and each line decoded on
 * its own: decoding whole 1 MB chunks (string_decoder) and splitting the text (readline's regex) cost
 * about as much as parsing the lines' JSON. Line ends as readline takes them: \n, \r\n or a lone \r.
 * Neither byte occurs inside a multi-byte UTF-8 character, so a character split between chunks is whole
 * again in the carried line.
 */
export async function* lineBatches(input: AsyncIterable<Buffer | string>): AsyncGenerator<string[]> {
  let carry: Buffer | null = null;
  for await (const chunk of input) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    const buffer: Buffer = carry ? Buffer.concat([carry, bytes]) : bytes;
    const lines: string[] = [];
    const consumed = split(buffer, lines, false);
    carry = consumed < buffer.length ? buffer.subarray(consumed) : null;
    if (lines.length > 0) yield lines;
  }
  if (carry) {
    const lines: string[] = [];
    const consumed = split(carry, lines, true);
    if (consumed < carry.length) lines.push(carry.toString('utf8', consumed));
    if (lines.length > 0) yield lines;
  }
}

/** Pushes the complete lines of `buffer`; returns where the unfinished rest starts. */
function split(buffer: Buffer, lines: string[], final: boolean): number {
  let start = 0;
  let lf = buffer.indexOf(10);
  let cr = buffer.indexOf(13);
  for (;;) {
    if (cr !== -1 && cr < start) cr = buffer.indexOf(13, start);
    if (lf !== -1 && lf < start) lf = buffer.indexOf(10, start);
    let end: number;
    let next: number;
    if (cr !== -1 && (lf === -1 || cr < lf)) {
      // A \r as the chunk's last byte may be the first half of \r\n: decided with the next chunk.
      if (cr + 1 === buffer.length && !final) return start;
      end = cr;
      next = buffer[cr + 1] === 10 ? cr + 2 : cr + 1;
    } else if (lf !== -1) {
      end = lf;
      next = lf + 1;
    } else return start;
    lines.push(buffer.toString('utf8', start, end));
    start = next;
  }
}
