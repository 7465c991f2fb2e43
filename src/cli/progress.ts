/**
 * Progress of a long CLI run on stderr. On a terminal: a cli-progress bar with count, rate and ETA
 * (ETA only when the total is known). Off one (CI, pipes, log files): a plain line every 5 s. Either
 * way the run ends with one plain line `<label>: N events, N events/s in S s` (scripts and tests match it).
 */
import cliProgress from 'cli-progress';

export type Progress = { add(n: number): void; done(): void };

export type ProgressOptions = { out?: NodeJS.WriteStream; total?: number | null };

export function createProgress(label: string, { out = process.stderr, total = null }: ProgressOptions = {}): Progress {
  const started = Date.now();
  let count = 0;
  const rate = () => Math.round(count / Math.max(0.001, (Date.now() - started) / 1000));
  const seconds = () => ((Date.now() - started) / 1000).toFixed(2);
  const line = () => `${label}: ${count.toLocaleString('en')} events, ${rate().toLocaleString('en')} events/s in ${seconds()} s`;

  if (out.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: out,
        format: total ? `${label} [{bar}] {value}/{total} events | {rate} events/s | ETA {eta_formatted}` : `${label}: {value} events | {rate} events/s`,
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 50,
        fps: 4,
      },
      cliProgress.Presets.shades_classic,
    );
    // Unknown total (a filtered export): a bar without an end, so no ETA is claimed.
    bar.start(total ?? 0, 0, { rate: 0 });
    return {
      add(n) {
        count += n;
        if (total !== null && count > total) bar.setTotal(count); // events appended while we run
        bar.update(count, { rate: rate() });
      },
      done() {
        bar.stop();
        out.write(`${line()}\n`);
      },
    };
  }

  let drawn = started;
  return {
    add(n) {
      count += n;
      if (Date.now() - drawn > 5_000) {
        const eta = total && count < total ? `, ETA ${Math.round((total - count) / Math.max(1, rate()))} s` : '';
        out.write(`${line()}${total ? ` of ${total.toLocaleString('en')}` : ''}${eta}\n`);
        drawn = Date.now();
      }
    },
    done: () => void out.write(`${line()}\n`),
  };
}
