#!/usr/bin/env node
// The operator CLI without npm's banner: `npx esoz-cli <command>` (this package's bin) and
// `npm run --silent cli -- <command>` both write nothing to stdout but the command's own output, so
// `npx esoz-cli export > history.ndjson` is a clean file. Runs src/cli/main.ts with tsx under the CLI's
// heap bound (see README, "An auditor"); signals and the exit code pass through.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const child = spawn(process.execPath, ['--max-old-space-size=160', '--import', 'tsx', 'src/cli/main.ts', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => (signal ? process.kill(process.pid, signal) : process.exit(code ?? 4)));
