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
  const server = await createServer({ config, logger });
  const url = await server.listen();
  const banner = [`ЕСОЗ device dispense & licence registry listening on ${url}`, `  event store: ${config.EVENT_STORE}, data: ${config.DATA_DIR}`];
  if (server.dev.token) banner.push(`  demo access token (12h, the demo pharmacy's scopes: own-entity audit, no audit:read_all):`, `  ${server.dev.token.demoToken}`);
  if (server.dev.signer) banner.push(`  demo signer (for signed requests): npm run cli -- sign <payload.json>`);
  process.stdout.write(`${banner.join('\n')}\n`);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    server.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((error: unknown) => {
  process.stderr.write(`Failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
