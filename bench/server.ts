/**
 * The bench's server process (forked by bench/commandRate.ts): the real server on the bench's schema,
 * with every SQL statement counted (those sent while an HTTP request is being handled are the critical
 * path) and its CPU time, reported to the parent over IPC.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createServer } from '../src/server.js';
import { countSql } from './sqlCounter.js';

const inRequest = new AsyncLocalStorage<boolean>();
const sql = countSql(() => inRequest.getStore() === true);

const config = loadConfig();
const server = await createServer({ config, logger: createLogger(config.LOG_LEVEL) });
const handle = server.app;
// Every request runs inside the async context that marks its statements as the critical path.
const app = (req: IncomingMessage, res: ServerResponse) => inRequest.run(true, () => handle(req, res));
const { createServer: createHttpServer } = await import('node:http');
const http = createHttpServer({ keepAliveTimeout: 60_000 }, app);
await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
const address = http.address();
const port = typeof address === 'object' && address ? address.port : 0;

type Message = { type: 'sample' } | { type: 'stop' };
process.on('message', (message: Message) => {
  if (message.type === 'sample') process.send!({ type: 'sample', cpu: process.cpuUsage(), sql: sql.read() });
  if (message.type === 'stop') {
    http.closeAllConnections();
    http.close();
    void server.stop().then(() => process.exit(0));
  }
});
process.send!({ type: 'ready', url: `http://127.0.0.1:${port}`, token: server.dev.token?.demoToken ?? '' });
