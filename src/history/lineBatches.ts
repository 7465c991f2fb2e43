/**
 * The lines of a byte stream, a chunk's worth at a time (one await per chunk, not per line), pulled so a
 * slow consumer holds the producer back. The bytes are split first (memchr) and each line decoded on
 * its own: decoding whole 1 MB chunks (string_decoder) and splitting the text (readline's regex) cost
 * about as much as parsing the lines' JSON. Line ends as readline takes them: \n, \r\n or a lone \r.
 * Neither byte occurs inside a multi-byte UTF-8 character, so a character split between chunks is whole
 * again in the carried line. The carry is kept as its pieces and joined with the head of the chunk that
 * ends it only (joining it to each whole chunk copied the stream once more, and a long line many times).
 */
/** A line longer than the bound (its bytes, without the line end): `lineNumber` counts from 1. */
export class LineTooLongError extends Error {
  constructor(
    readonly lineNumber: number,
    readonly maxLineBytes: number,
  ) {
    super(`line ${lineNumber} is longer than ${maxLineBytes} bytes`);
    this.name = 'LineTooLongError';
  }
}

/**
 * `maxLineBytes`: a longer line throws LineTooLongError as soon as that many of its bytes have come in,
 * so at most the bound and one chunk of it are ever held (without it, a line is held whole however
 * long it is).
 */
export async function* lineBatches(
  input: AsyncIterable<Buffer | string>,
  { maxLineBytes = Infinity }: { maxLineBytes?: number } = {},
): AsyncGenerator<string[]> {
  // The unfinished line, as the pieces it came in.
  let carry: Buffer[] = [];
  let carried = 0;
  // Lines yielded so far (the number of the next one is emitted + the current batch's + 1).
  let emitted = 0;
  const split = (buffer: Buffer, from: number, lines: string[], final: boolean) =>
    splitLines(buffer, from, lines, final, (length) => {
      if (length > maxLineBytes) throw new LineTooLongError(emitted + lines.length + 1, maxLineBytes);
    });
  for await (const chunk of input) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (bytes.length === 0) continue;
    const lines: string[] = [];
    try {
      let from = 0;
      if (carried > 0) {
        const lf = bytes.indexOf(10);
        const cr = bytes.indexOf(13);
        const end = lf === -1 ? cr : cr === -1 ? lf : Math.min(lf, cr);
        const last = carry[carry.length - 1]!;
        if (end === -1 && last[last.length - 1] !== 13) {
          carry.push(bytes);
          carried += bytes.length;
          if (carried > maxLineBytes) throw new LineTooLongError(emitted + 1, maxLineBytes);
          continue;
        }
        // Joined with the chunk's head only: through one byte past its first line end (\r\n), or its
        // first byte when the carry ends in a \r.
        const head = Buffer.concat([...carry, bytes.subarray(0, end === -1 ? 1 : Math.min(end + 2, bytes.length))]);
        const consumed = split(head, 0, lines, false);
        if (consumed < carried) {
          // Undecided: a \r as this chunk's last byte ends the head, and the next chunk decides \r\n.
          carry = [head];
          carried = head.length;
          continue;
        }
        from = consumed - carried;
        carry = [];
        carried = 0;
      }
      const consumed = split(bytes, from, lines, false);
      if (consumed < bytes.length) {
        carry = [bytes.subarray(consumed)];
        carried = bytes.length - consumed;
        if (carried > maxLineBytes) throw new LineTooLongError(emitted + lines.length + 1, maxLineBytes);
      }
    } catch (error) {
      // The lines before a too-long one come first: a file's problems are reported in its order.
      if (error instanceof LineTooLongError && lines.length > 0) yield lines;
      throw error;
    }
    if (lines.length > 0) {
      emitted += lines.length;
      yield lines;
    }
  }
  if (carried > 0) {
    const rest = Buffer.concat(carry);
    const lines: string[] = [];
    let tooLong: LineTooLongError | null = null;
    try {
      const consumed = split(rest, 0, lines, true);
      if (consumed < rest.length) {
        if (rest.length - consumed > maxLineBytes) throw new LineTooLongError(emitted + lines.length + 1, maxLineBytes);
        lines.push(rest.toString('utf8', consumed));
      }
    } catch (error) {
      if (!(error instanceof LineTooLongError)) throw error;
      tooLong = error;
    }
    if (lines.length > 0) yield lines;
    if (tooLong) throw tooLong;
  }
}

/** Pushes the complete lines of `buffer` (each checked by `check(its length)` first); returns where the unfinished rest starts. */
function splitLines(buffer: Buffer, from: number, lines: string[], final: boolean, check: (length: number) => void): number {
  let start = from;
  let lf = buffer.indexOf(10, from);
  let cr = buffer.indexOf(13, from);
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
    check(end - start);
    lines.push(buffer.toString('utf8', start, end));
    start = next;
  }
}
