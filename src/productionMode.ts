/**
 * Production mode (NODE_ENV=production, docs/production-mode.md): the settings it cannot do without,
 * and the environment variables that look like settings but are none (a typo silently falls back to
 * a development default otherwise). Pure functions of the environment; config.ts turns them into its
 * one-line error, main.ts into warnings in development.
 */

/** Prefixes of this service's settings: any other name with one of them is a mistake. */
export const SETTING_PREFIXES = [
  'AUTH_',
  'DATABASE_',
  'EVENT_',
  'EVENTSTORE_',
  'MONGO_',
  'AUDIT_',
  'JOB_',
  'DS_',
  'REFERENCE_',
  'METRICS_',
  'IDEMPOTENCY_',
  'SHUTDOWN_',
  'EXPIRATION_',
  'CORS_',
  'PUBLIC_',
  'BODY_',
  'AGGREGATE_',
  'IMPORT_',
  'ON_',
] as const;

/** Names this short are compared by prefix only: at distance 2 they would match common variables (HOME ~ HOST). */
const MIN_LOOKALIKE_LENGTH = 8;
const MAX_DISTANCE = 2;

type Env = Record<string, string | undefined>;

/** What production needs configured, as one problem per missing part (the text config.ts joins into its line). */
export function missingInProduction(env: Env): string[] {
  const set = (name: string) => (env[name]?.trim() ?? '') !== '';
  const missing: string[] = [];
  if (!set('AUTH_JWKS_FILE') && !set('AUTH_JWKS_URL')) missing.push('AUTH_JWKS_FILE or AUTH_JWKS_URL is required (the access-token keys)');
  if (!set('DS_TRUSTED_CA_FILE')) missing.push('DS_TRUSTED_CA_FILE is required (the signature trust store)');
  if (!set('AUDIT_ANCHOR_KEY_FILE')) missing.push('AUDIT_ANCHOR_KEY_FILE is required (the anchor signing key)');
  if (!set('AUDIT_WITNESS_URL') && !set('AUDIT_WITNESS_FILE')) missing.push('AUDIT_WITNESS_URL or AUDIT_WITNESS_FILE is required (the anchor witness)');
  if (env.EVENT_STORE?.trim() === 'pglite') missing.push('EVENT_STORE must be postgres or eventstoredb (not the embedded pglite)');
  if (!set('DATABASE_URL')) missing.push('DATABASE_URL is required (a PostgreSQL database, not the embedded PGlite)');
  return missing;
}

export type Lookalike = { name: string; suggestion: string | null; problem: string };

/**
 * Variables that look like settings but are none: one of our prefixes and not a setting, or within
 * Damerau–Levenshtein distance 2 of a setting of 8 characters or more (DATABSE_URL). npm's own
 * `npm_*` variables are never ours.
 */
export function lookalikeVariables(env: Env, known: readonly string[]): Lookalike[] {
  const settings = new Set(known);
  const found: Lookalike[] = [];
  for (const name of Object.keys(env).sort()) {
    if (settings.has(name) || name.startsWith('npm_')) continue;
    // Compared upper-cased: database_url is as much a mistake as DATABSE_URL.
    const upper = name.toUpperCase();
    let suggestion: string | null = null;
    let best = MAX_DISTANCE + 1;
    for (const setting of known) {
      if (setting.length < MIN_LOOKALIKE_LENGTH) continue;
      const distance = editDistance(upper, setting, best);
      if (distance < best) [best, suggestion] = [distance, setting];
    }
    const prefix = SETTING_PREFIXES.find((p) => upper.startsWith(p));
    if (!suggestion && !prefix) continue;
    const problem = suggestion
      ? `${name} is not a setting (did you mean ${suggestion}?)`
      : `${name} is not a setting (${prefix} is this service's prefix; see the README's Settings)`;
    found.push({ name, suggestion, problem });
  }
  return found;
}

/** Optimal-string-alignment distance (insert, delete, substitute, swap two neighbours); stops early past `limit`. */
export function editDistance(a: string, b: string, limit = Number.POSITIVE_INFINITY): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let beforePrevious: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, beforePrevious[j - 2]! + 1);
      current.push(value);
      rowMin = Math.min(rowMin, value);
    }
    if (rowMin >= limit) return limit;
    [beforePrevious, previous] = [previous, current];
  }
  return previous[b.length]!;
}
