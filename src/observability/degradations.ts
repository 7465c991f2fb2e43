/**
 * What /health/ready lists under `degraded`: parts that work less than fully while the stores answer
 * (a projection halted at a poison event, parked events, …). Each condition is one registered source,
 * so a later one is a single `register` call; a source that fails or hangs is itself an entry.
 */
export type Degradation = { part: string; reason: string };
export type DegradationSource = () => Promise<Degradation[]>;

export type Degradations = {
  register(name: string, source: DegradationSource): void;
  collect(): Promise<Degradation[]>;
};

const SOURCE_TIMEOUT_MS = 2_000;

export function createDegradations(): Degradations {
  const sources: Array<{ name: string; source: DegradationSource }> = [];
  return {
    register(name, source) {
      sources.push({ name, source });
    },
    async collect() {
      const found = await Promise.all(
        sources.map(({ name, source }) =>
          Promise.race([source(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), SOURCE_TIMEOUT_MS).unref())]).catch(
            (): Degradation[] => [{ part: name, reason: 'could not be checked' }],
          ),
        ),
      );
      return found.flat();
    },
  };
}
