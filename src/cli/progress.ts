/** A one-line progress report on stderr (events and events/s), redrawn at most 4 times a second. */
export type Progress = { add(n: number): void; done(): void };

export function createProgress(label: string, out: NodeJS.WriteStream = process.stderr): Progress {
  const started = Date.now();
  let count = 0;
  let drawn = started;
  const line = () => {
    const seconds = Math.max(0.001, (Date.now() - started) / 1000);
    return `${label}: ${count.toLocaleString('en')} events, ${Math.round(count / seconds).toLocaleString('en')} events/s`;
  };
  const draw = (final: boolean) => out.write(`${out.isTTY ? '\r\x1b[2K' : ''}${line()}${final || !out.isTTY ? '\n' : ''}`);
  return {
    add(n) {
      count += n;
      // Off a terminal (CI, pipes) a line every 5 s is enough; on one, redraw often.
      if (Date.now() - drawn > (out.isTTY ? 250 : 5_000)) {
        draw(false);
        drawn = Date.now();
      }
    },
    done: () => draw(true),
  };
}
