/** `npm start`: serve on the configured stores (the embedded PGlite default when nothing is set). */
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { createServer } from './server.js';

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
  const banner = [
    `ЕСОЗ device dispense & licence registry listening on ${url} (started in ${startedIn} s)`,
    `  event store: ${config.EVENT_STORE}, data: ${config.DATA_DIR}`,
  ];
  if (server.dev.token)
    banner.push(`  demo access token (12h, the demo pharmacy's scopes: own-entity audit, no audit:read_all):`, `  ${server.dev.token.demoToken}`);
  if (server.dev.signer) banner.push(`  demo signer (for signed requests): npm run cli -- sign <payload.json>`);
  process.stdout.write(`${banner.join('\n')}\n`);
  if (requested) shutdown(requested);
}

main().catch((error: unknown) => {
  process.stderr.write(`Failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
