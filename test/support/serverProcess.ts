/**
 * The server as a real child process (`src/main.ts` through tsx), for tests that kill it with
 * SIGKILL or run two of them on one database.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export type ServerProcess = { url: string; child: ChildProcess; output(): string; kill(signal?: NodeJS.Signals): Promise<void> };

export async function startServerProcess(env: Record<string, string>, timeoutMs = 90_000): Promise<ServerProcess> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, PORT: '0', LOG_LEVEL: 'warn', ...env };
  if (!env.DATABASE_URL) delete childEnv.DATABASE_URL;
  // tsx's loader in this very process: the tsx CLI runs the server in a child of its own, which a
  // SIGKILL of the CLI leaves running (holding its locks and jobs) — a kill test would kill nothing.
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + timeoutMs;
  while (!/listening on (http:\/\/\S+)/.test(output)) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`server did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url: /listening on (http:\/\/\S+)/.exec(output)![1]!,
    child,
    output: () => output,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill(signal);
      await exited;
    },
  };
}
