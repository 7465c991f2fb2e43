/** A sleep that someone else can cut short (new work arrived, or stop()). */
export function createWakeableSleep() {
  const sleepers = new Set<() => void>();
  // A wakeOne that found nobody asleep is owed to the next sleep (the loop was just about to sleep).
  let owed = 0;
  return {
    sleep: (ms: number) =>
      new Promise<void>((resolve) => {
        if (owed > 0) {
          owed -= 1;
          return resolve();
        }
        const done = () => {
          clearTimeout(timer);
          sleepers.delete(done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        sleepers.add(done);
      }),
    wake: () => {
      for (const done of [...sleepers]) done();
    },
    /** Wakes one sleeper (one new job needs one worker loop); false when none was asleep. */
    wakeOne: (): boolean => {
      const first = sleepers.values().next();
      if (first.done) {
        owed = 1;
        return false;
      }
      first.value();
      return true;
    },
  };
}
