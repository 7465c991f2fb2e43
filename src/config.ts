/**
 * Every setting comes from an environment variable with a default and is validated here at start;
 * a bad value stops the server with one clear line (see main.ts).
 */
import { resolve } from 'node:path';
import { z } from 'zod';

const optionalString = z.string().trim().min(1).optional();
const optionalUrl = (protocols: RegExp) =>
  z
    .string()
    .trim()
    .refine((value) => protocols.test(value), { message: `must start with ${protocols.source.replace(/[\\^()]/g, '')}` })
    .optional();

export const configSchema = z
  .object({
    PORT: z.coerce.number({ error: 'must be a port number' }).int().min(0).max(65535).default(4000),
    HOST: z.string().trim().min(1).default('127.0.0.1'),
    DATA_DIR: z.string().trim().min(1).default('./data'),
    EVENT_STORE: z.enum(['pglite', 'postgres', 'eventstoredb']).optional(),
    DATABASE_URL: optionalUrl(/^(postgres|postgresql):\/\//),
    /** Optional schema for every table (several installations, or test isolation, on one server). */
    DATABASE_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier').optional(),
    EVENTSTORE_URL: optionalUrl(/^(esdb|esdb\+discover|kurrentdb|kdb):\/\//),
    MONGO_URL: optionalUrl(/^(mongodb|mongodb\+srv):\/\//),
    AUTH_JWKS_FILE: optionalString,
    AUTH_JWKS_URL: optionalUrl(/^https?:\/\//),
    AUTH_ISSUER: optionalString,
    DS_TRUSTED_CA_FILE: optionalString,
    REFERENCE_DATA_FILE: optionalString,
    EVENT_MANAGER_URL: optionalUrl(/^https?:\/\//),
    /** First retry delay of a StatusChangeEvent delivery; doubles per attempt up to a minute. */
    EVENT_MANAGER_RETRY_MIN_MS: z.coerce.number({ error: 'must be a number' }).int().min(1).default(500),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Jobs processed at the same time by this process. */
    JOB_CONCURRENCY: z.coerce.number({ error: 'must be a number' }).int().min(1).max(32).default(2),
    /** How often the auto-expiration sweep of in_progress device dispenses runs. */
    EXPIRATION_SWEEP_INTERVAL_SECONDS: z.coerce.number({ error: 'must be a number' }).int().min(1).default(60),
    /** Largest accepted request body. */
    BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)$/i, 'must look like 512kb or 1mb').default('1mb'),
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
      .transform((value) => value.split(',').map((origin) => origin.trim()).filter((origin) => origin !== ''))
      .pipe(z.array(z.string().regex(/^https?:\/\/[^/?#\s]+$/, 'must be a comma list of origins like https://mis.example.com')))
      .default([]),
    /** How long an X-Idempotency-Key (and the answer it replays) is kept. */
    IDEMPOTENCY_KEY_TTL_SECONDS: z.coerce.number({ error: 'must be a number' }).int().min(1).default(86_400),
  })
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
    DATA_DIR: resolve(config.DATA_DIR),
    PUBLIC_URL: config.PUBLIC_URL ?? `http://${config.HOST === '0.0.0.0' ? 'localhost' : config.HOST}:${config.PORT}`,
    /** Whether PUBLIC_URL was set, or derived (then the port a PORT=0 listen got replaces it). */
    PUBLIC_URL_CONFIGURED: config.PUBLIC_URL !== undefined,
  }));

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {}

/** Parses the environment; the error's message is one line naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings count as unset: `FOO= npm start` should not be a bad value.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const result = configSchema.safeParse(cleaned);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.join('.') || 'config'} ${issue.message}`);
  throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
}
