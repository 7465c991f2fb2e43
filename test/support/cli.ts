import { spawn } from 'node:child_process';

/** Runs the operator CLI in a child process; resolves with its exit code and output. */
export function runCli(
  args: string[],
  env: Record<string, string>,
  { nodeOptions = '' } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, LOG_LEVEL: 'warn', NODE_OPTIONS: nodeOptions };
    if (!env.DATABASE_URL) delete childEnv.DATABASE_URL;
    // tsx's loader in the CLI's own process: the tsx command would start a second Node process to run
    // it (about 0.8 s more per run on this machine, and `npm test` runs the CLI dozens of times).
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
