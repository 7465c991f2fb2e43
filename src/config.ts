/**
 * Every setting comes from an environment variable with a default and is validated here at start;
 * a bad value stops the server with one clear line (see main.ts).
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { DEFAULT_MAX_TOKEN_LIFETIME_SECONDS } from './auth/accessTokens.js';
import { lookalikeVariables, missingInProduction } from './productionMode.js';

const optionalString = z.string().trim().min(1).optional();
const optionalUrl = (protocols: RegExp) =>
  z
    .string()
    .trim()
    .refine((value) => protocols.test(value), { message: `must start with ${protocols.source.replace(/[\\^()]/g, '')}` })
    .optional();

/** IMPORT_MAX_LINE_BYTES (also read alone by `cli verify --export`, which needs no other setting). */
export const importMaxLineBytes = z.coerce
  .number({ error: 'must be a number of bytes' })
  .int({ error: 'must be a whole number of bytes' })
  .min(1024, { error: 'must be at least 1024 bytes' })
  .max(64 * 1024 * 1024, { error: "must be at most 67108864 bytes (64 MiB: a line is held whole in the CLI's 160 MB heap)" })
  .default(8 * 1024 * 1024);

const settingsObject = z.object({
  /** `production` turns on production mode (src/productionMode.ts); anything else is development. */
  NODE_ENV: z.string().trim().optional(),
  PORT: z.coerce.number({ error: 'must be a port number' }).int().min(0).max(65535).default(4000),
  HOST: z.string().trim().min(1).default('127.0.0.1'),
  DATA_DIR: z.string().trim().min(1).default('./data'),
  EVENT_STORE: z.enum(['pglite', 'postgres', 'eventstoredb']).optional(),
  DATABASE_URL: optionalUrl(/^(postgres|postgresql):\/\//),
  /** Optional schema for every table (several installations, or test isolation, on one server). */
  DATABASE_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier')
    .optional(),
  /** Only the schemes @eventstore/db-client 6.2.1 parses (esdb:// one node, esdb+discover:// gossip). */
  EVENTSTORE_URL: optionalUrl(/^(esdb|esdb\+discover):\/\//),
  MONGO_URL: optionalUrl(/^(mongodb|mongodb\+srv):\/\//),
  AUTH_JWKS_FILE: optionalString,
  AUTH_JWKS_URL: optionalUrl(/^https?:\/\//),
  /** Required `iss` / `aud` of access tokens (with the development key: DEV_ISSUER / DEV_AUDIENCE when unset). */
  AUTH_ISSUER: optionalString,
  AUTH_AUDIENCE: optionalString,
  /** A token whose exp is further ahead than this is refused (no "eternal" tokens). */
  AUTH_MAX_TOKEN_LIFETIME_SECONDS: z.coerce
    .number({ error: 'must be a number' })
    .int('must be whole seconds')
    .min(60, 'must be at least 60')
    .max(31 * 24 * 3600, 'must be at most 31 days')
    .default(DEFAULT_MAX_TOKEN_LIFETIME_SECONDS),
  /** Allowed clock difference to the token issuer, for exp, nbf and iat. */
  AUTH_CLOCK_SKEW_SECONDS: z.coerce
    .number({ error: 'must be a number' })
    .int('must be whole seconds')
    .min(0, 'must not be negative')
    .max(600, 'must be at most 600')
    .default(60),
  DS_TRUSTED_CA_FILE: optionalString,
  REFERENCE_DATA_FILE: optionalString,
  /** Reference records (and lists of a party's employees) each process keeps; about 1 KB each. 0 turns the cache off. */
  REFERENCE_CACHE_SIZE: z.coerce.number({ error: 'must be a number' }).int().min(0).max(1_000_000).default(20_000),
  /** How often each process reads the reference change log even without a NOTIFY (a lost message waits at most this). */
  REFERENCE_POLL_MS: z.coerce.number({ error: 'must be a number' }).int().min(50).max(60_000).default(500),
  /** Lines of one POST /api/admin/reference batch, and its body limit. */
  REFERENCE_BATCH_MAX_LINES: z.coerce.number({ error: 'must be a number' }).int().min(1).max(1_000_000).default(10_000),
  REFERENCE_BATCH_BODY_LIMIT: z
    .string()
    .regex(/^\d+(b|kb|mb)$/i, 'must look like 512kb or 16mb')
    .default('16mb'),
  /** How far a time in signed content or a request (when_handed_over) may be ahead of this server's clock. */
  DS_CLOCK_SKEW_SECONDS: z.coerce.number({ error: 'must be a number' }).int().min(0).max(3600).default(60),
  EVENT_MANAGER_URL: optionalUrl(/^https?:\/\//),
  /** First retry delay of a StatusChangeEvent delivery; doubles per attempt up to a minute. */
  EVENT_MANAGER_RETRY_MIN_MS: z.coerce.number({ error: 'must be a number' }).int().min(1).default(500),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * Connections of this process's pool (advisory locks and LISTEN have their own, outside it). Commands
   * run within their requests, one transaction each, so it bounds the commands in flight: 20 kept a
   * 2-core server busy at 16 clients (bench), where 10 made requests queue for connections.
   */
  DATABASE_POOL_SIZE: z.coerce.number({ error: 'must be a number' }).int().min(2).max(200).default(20),
  /**
   * Streams whose last state this process keeps (device dispenses, licences), so a command on one it
   * has just written skips reading it; a dispense costs about 4 KB of heap (40 MB at the default
   * size, measured). 0 turns the cache off.
   */
  AGGREGATE_CACHE_SIZE: z.coerce.number({ error: 'must be a number' }).int().min(0).max(1_000_000).default(10_000),
  /** Jobs processed at the same time by this process. */
  JOB_CONCURRENCY: z.coerce.number({ error: 'must be a number' }).int().min(1).max(32).default(2),
  /** A running job's lease, renewed every third of it; a crashed process's job is taken over after it. */
  JOB_LEASE_SECONDS: z.coerce.number({ error: 'must be a number' }).int().min(1).max(3600).default(10),
  /** How often the auto-expiration sweep of in_progress device dispenses runs. */
  EXPIRATION_SWEEP_INTERVAL_SECONDS: z.coerce.number({ error: 'must be a number' }).int().min(1).default(60),
  /** Longest line of a history file `cli import` reads (bytes, without the line end); a longer line is refused with its number. */
  IMPORT_MAX_LINE_BYTES: importMaxLineBytes,
  /** Largest accepted request body. */
  BODY_LIMIT: z
    .string()
    .regex(/^\d+(b|kb|mb)$/i, 'must look like 512kb or 1mb')
    .default('1mb'),
  /** The base of `meta.url` (never the request's Host header); unset → http://HOST:PORT. */
  PUBLIC_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .trim()
    .refine((value) => !/[?#]/.test(value), 'must not have a query or fragment')
    .transform((value) => value.replace(/\/+$/, ''))
    .optional(),
  /** Origins allowed by CORS, comma-separated; unset → no CORS at all. */
  CORS_ALLOWED_ORIGINS: z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((origin) => origin.trim())
        .filter((origin) => origin !== ''),
    )
    .pipe(z.array(z.string().regex(/^https?:\/\/[^/?#\s]+$/, 'must be a comma list of origins like https://mis.example.com')))
    .default([]),
  /** How long an X-Idempotency-Key (and the answer it replays) is kept. */
  /** A stored projection checkpoint past the head of the log (event store wiped or swapped): refuse to start, or rebuild. */
  ON_CHECKPOINT_AHEAD: z.enum(['fail', 'rebuild']).default('fail'),
  /**
   * An event a projection cannot apply (docs/projections-and-poison-events.md): `stop` halts that
   * projection at it (its read model's truth depends on order), `park` records it and moves on.
   */
  ON_POISON_EVENT: z.enum(['stop', 'park']).default('stop'),
  IDEMPOTENCY_KEY_TTL_SECONDS: z.coerce.number({ error: 'must be a number' }).int().min(1).default(86_400),
  /** On SIGTERM/SIGINT: how long running requests and jobs may take to finish before the process exits anyway. */
  SHUTDOWN_TIMEOUT_SECONDS: z.coerce.number({ error: 'must be a number' }).int().min(1).max(600).default(10),
  /** Anchors (issue 16): one is due once this many events were appended since the last one … */
  AUDIT_ANCHOR_EVERY_EVENTS: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(100_000, 'must be at most 100000')
    .default(1000),
  /** … checked (and so written) at most this often. */
  AUDIT_ANCHOR_INTERVAL_SECONDS: z.coerce
    .number({ error: 'must be a number' })
    .int('must be whole seconds')
    .min(1, 'must be at least 1')
    .max(86_400, 'must be at most a day')
    .default(60),
  /** Private JWK (ES256 or RS256) that signs anchors; unset → development key under DATA_DIR/dev/audit. */
  AUDIT_ANCHOR_KEY_FILE: optionalString,
  /** Anchor witness (issue 29's witnessed tamper evidence): required in production, one of the two. */
  AUDIT_WITNESS_URL: optionalUrl(/^https?:\/\//),
  AUDIT_WITNESS_FILE: optionalString,
  /** Token scope needed to read GET /metrics (unless METRICS_PUBLIC=true). */
  METRICS_SCOPE: z.string().trim().min(1).default('admin:read'),
  /** true: GET /metrics needs no token (only when the port is not reachable from outside, or behind a proxy that guards it). */
  METRICS_PUBLIC: z
    .enum(['true', 'false'])
    .default('false')
    .transform((value) => value === 'true'),
});

/** Every environment variable this service reads (the look-alike check compares names with these). */
export const KNOWN_SETTINGS: readonly string[] = Object.keys(settingsObject.shape);

export const configSchema = settingsObject
  .superRefine((config, ctx) => {
    if (config.AUTH_JWKS_FILE && config.AUTH_JWKS_URL)
      ctx.addIssue({ code: 'custom', path: ['AUTH_JWKS_URL'], message: 'set either AUTH_JWKS_FILE or AUTH_JWKS_URL, not both' });
    const store = config.EVENT_STORE ?? (config.DATABASE_URL ? 'postgres' : 'pglite');
    if (store === 'postgres' && !config.DATABASE_URL)
      ctx.addIssue({ code: 'custom', path: ['DATABASE_URL'], message: 'is required when EVENT_STORE=postgres' });
    if (store === 'eventstoredb' && !config.EVENTSTORE_URL)
      ctx.addIssue({ code: 'custom', path: ['EVENTSTORE_URL'], message: 'is required when EVENT_STORE=eventstoredb' });
    if (store === 'pglite' && config.DATABASE_URL)
      ctx.addIssue({ code: 'custom', path: ['EVENT_STORE'], message: 'pglite cannot be combined with DATABASE_URL (use postgres)' });
  })
  .transform((config) => ({
    ...config,
    EVENT_STORE: config.EVENT_STORE ?? (config.DATABASE_URL ? ('postgres' as const) : ('pglite' as const)),
    PRODUCTION: config.NODE_ENV === 'production',
    DATA_DIR: resolve(config.DATA_DIR),
    PUBLIC_URL: config.PUBLIC_URL ?? `http://${config.HOST === '0.0.0.0' ? 'localhost' : config.HOST}:${config.PORT}`,
    /** Whether PUBLIC_URL was set, or derived (then the port a PORT=0 listen got replaces it). */
    PUBLIC_URL_CONFIGURED: config.PUBLIC_URL !== undefined,
  }));

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {}

/**
 * Parses the environment; the error's message is one line naming every bad variable. In production
 * (NODE_ENV=production) it also names every missing production setting and every look-alike variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings count as unset: `FOO= npm start` should not be a bad value.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const result = configSchema.safeParse(cleaned);
  const problems = result.success ? [] : result.error.issues.map((issue) => `${issue.path.join('.') || 'config'} ${issue.message}`);
  const production = cleaned.NODE_ENV?.trim() === 'production';
  if (production) problems.push(...missingInProduction(cleaned), ...lookalikeVariables(cleaned, KNOWN_SETTINGS).map((found) => found.problem));
  if (result.success && problems.length === 0) return result.data;
  throw new ConfigError(`${production ? 'Invalid configuration for production (NODE_ENV=production)' : 'Invalid configuration'}: ${problems.join('; ')}`);
}
