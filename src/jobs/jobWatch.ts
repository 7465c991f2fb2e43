/**
 * Who is waiting for which job (`GET /api/jobs/{id}` with `Prefer: wait=N`), and the jobs this process
 * finished lately: a job run within its request is answered from memory (no query), and a waiter is
 * woken the moment its job ends here, or in another process (its NOTIFY, see server.ts).
 */
import type { Job } from './jobStore.js';

export type JobWatch = ReturnType<typeof createJobWatch>;

export function createJobWatch({ recentSize = 10_000 }: { recentSize?: number } = {}) {
  // Insertion-ordered: the first entry is the oldest.
  const recent = new Map<string, Job>();
  const waiters = new Map<string, Set<() => void>>();
  let closed = false;

  const wake = (id: string) => {
    const waiting = waiters.get(id);
    if (!waiting) return;
    waiters.delete(id);
    for (const done of waiting) done();
  };

  return {
    /** A job of this process ended (or was accepted already ended). */
    finished(job: Job) {
      recent.set(job.id, job);
      if (recent.size > recentSize) recent.delete(recent.keys().next().value!);
      wake(job.id);
    },
    /** Another process ended the job. */
    signal: wake,
    recent: (id: string): Job | undefined => recent.get(id),
    /**
     * Resolves when the job ends (finished/signal), after `ms`, or at shutdown. Register before reading
     * the job, so an end between the read and the wait is not missed; `cancel` when not waiting after all.
     */
    waitFor(id: string, ms: number): { ended: Promise<void>; cancel(): void } {
      let done: () => void = () => undefined;
      const ended = new Promise<void>((resolve) => {
        if (closed) return resolve();
        const timer = setTimeout(() => done(), ms);
        done = () => {
          clearTimeout(timer);
          waiters.get(id)?.delete(done);
          if (waiters.get(id)?.size === 0) waiters.delete(id);
          resolve();
        };
        const set = waiters.get(id) ?? new Set();
        set.add(done);
        waiters.set(id, set);
      });
      return { ended, cancel: () => done() };
    },
    isClosed: () => closed,
    /** Shutdown: every waiter answers now (their requests must end before the server does). */
    close() {
      closed = true;
      for (const id of [...waiters.keys()]) wake(id);
    },
  };
}
