/**
 * `npm start`: serve on the configured stores (the embedded PGlite default when nothing is set).
 * Stdout carries only the JSON log lines; the development banner and its token go to stderr.
 */
import { join } from 'node:path';
import { ConfigError, KNOWN_SETTINGS, loadConfig, type Config } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { lookalikeVariables, missingInProduction } from './productionMode.js';
import { createServer, type RunningServer } from './server.js';

async function main() {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config.LOG_LEVEL);
  // Production refused these in loadConfig; development runs, but says so, one line per name.
  if (!config.PRODUCTION)
    for (const found of lookalikeVariables(process.env, KNOWN_SETTINGS))
      logger.warn({ variable: found.name, suggestion: found.suggestion }, `ignored environment variable: ${found.problem}`);
  // Signal handlers first: a SIGTERM that arrives while the server starts (or right after its banner)
  // must still shut it down gracefully, not kill it with the default action.
  let server: Awaited<ReturnType<typeof createServer>> | null = null;
  let requested: string | null = null;
  let stopping = false;
  const shutdown = (signal: string) => {
    requested = signal;
    if (!server || stopping) return; // not started yet: shut down as soon as it is
    stopping = true;
    logger.info({ signal, timeout_seconds: config.SHUTDOWN_TIMEOUT_SECONDS }, 'shutting down');
    // Bounded: a job still running past the deadline is left to its lease (it runs again after a restart).
    const deadline = setTimeout(() => {
      logger.warn('shutdown timed out; exiting with work still running');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_SECONDS * 1000);
    deadline.unref();
    server.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  server = await createServer({ config, logger });
  const url = await server.listen();
  // performance.now() counts from process start: module loading and store opening included.
  const startedIn = (performance.now() / 1000).toFixed(2);
  logger.info({ url, started_in_seconds: Number(startedIn), event_store: config.EVENT_STORE, production: config.PRODUCTION }, `listening on ${url}`);
  if (!config.PRODUCTION) {
    warnDevelopment(logger, config, server);
    const banner = [
      `ЕСОЗ device dispense & licence registry listening on ${url} (started in ${startedIn} s), development mode`,
      `  event store: ${config.EVENT_STORE}, data: ${config.DATA_DIR}`,
    ];
    if (server.dev.token)
      banner.push(`  demo access token (12h, the demo pharmacy's scopes: own-entity audit, no audit:read_all):`, `  ${server.dev.token.demoToken}`);
    if (server.dev.signer) banner.push(`  demo signer (for signed requests): npm run cli -- sign <payload.json>`);
    // stderr: a credential does not belong in the log stream, and stdout holds only JSON lines.
    process.stderr.write(`${banner.join('\n')}\n`);
  }
  if (requested) shutdown(requested);
}

/** The one warning of development mode: what it generated and loaded that production would refuse to do without. */
function warnDevelopment(logger: Logger, config: Config, server: RunningServer) {
  const dev = join(config.DATA_DIR, 'dev');
  const generated = [
    ...(server.dev.token ? [`access-token signing key (${join(dev, 'auth')})`, 'a 12 h demo access token (printed on stderr)'] : []),
    ...(server.dev.signer ? [`signature CA and demo signer (${join(dev, 'pki')})`] : []),
    ...(config.AUDIT_ANCHOR_KEY_FILE ? [] : [`anchor signing key (${join(dev, 'audit')})`]),
  ];
  const loaded = [
    ...(server.dev.demoReferenceData ? ['demo reference data'] : []),
    ...(config.EVENT_STORE === 'pglite' ? [`embedded PGlite (${config.DATA_DIR})`] : []),
  ];
  logger.warn(
    { mode: 'development', node_env: process.env.NODE_ENV ?? null, generated, loaded, production_would_refuse: missingInProduction(process.env) },
    'development mode (NODE_ENV is not production): not for production use',
  );
}

main().catch((error: unknown) => {
  // A configuration refusal is its own one line; anything else says it failed to start.
  const message = error instanceof ConfigError ? error.message : `Failed to start: ${error instanceof Error ? error.message : String(error)}`;
  process.stderr.write(`${message}\n`);
  process.exit(1);
});
