/**
 * The server as a real child process (`src/main.ts` through tsx), for tests that kill it with
 * SIGKILL or run two of them on one database.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ALL_SCOPES } from '../../src/auth/scopes.js';
import { createCertificateAuthority } from '../../src/signatures/devPki.js';
import { deviceRequestPool } from '../deviceDispenses/helpers.js';
import { ids, referenceData } from './fixtures.js';
import { createTokenIssuer } from './tokens.js';

export type ServerProcess = {
  url: string;
  child: ChildProcess;
  /** stdout and stderr interleaved as they came; `stdout()` alone (the JSON log lines). */
  output(): string;
  stdout(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
};

/** Waits for "listening on": the development banner, or (NODE_ENV=production: give LOG_LEVEL=info) the info log line. */
export async function startServerProcess(env: Record<string, string>, timeoutMs = 90_000): Promise<ServerProcess> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, PORT: '0', LOG_LEVEL: 'warn', ...env };
  if (!env.DATABASE_URL) delete childEnv.DATABASE_URL;
  // tsx's loader in this very process: the tsx CLI runs the server in a child of its own, which a
  // SIGKILL of the CLI leaves running (holding its locks and jobs) — a kill test would kill nothing.
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => ((output += chunk.toString()), (stdout += chunk.toString())));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + timeoutMs;
  while (!/listening on (http:\/\/[^\s"]+)/.test(output)) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`server did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url: /listening on (http:\/\/[^\s"]+)/.exec(output)![1]!,
    child,
    output: () => output,
    stdout: () => stdout,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill(signal);
      await exited;
    },
  };
}

/**
 * What a server process in `dir` needs: a token issuer's JWKS, a trusted CA and the fixture reference
 * data with `deviceRequests` fresh device requests (one per command). Returns the settings naming
 * them, those requests, and a token of the fixture pharmacist with every scope.
 */
export async function writeServerFiles(dir: string, deviceRequests: number): Promise<{ env: Record<string, string>; requests: string[]; token: string }> {
  const issuer = await createTokenIssuer();
  const ca = await createCertificateAuthority({ commonName: 'Test qualified trust service' });
  const data = referenceData();
  const next = deviceRequestPool(data, deviceRequests);
  await writeFile(join(dir, 'jwks.json'), JSON.stringify(issuer.jwks));
  await writeFile(join(dir, 'ca.pem'), ca.certificatePem);
  await writeFile(join(dir, 'reference.json'), JSON.stringify(data));
  return {
    env: {
      DATA_DIR: dir,
      AUTH_JWKS_FILE: join(dir, 'jwks.json'),
      DS_TRUSTED_CA_FILE: join(dir, 'ca.pem'),
      REFERENCE_DATA_FILE: join(dir, 'reference.json'),
      EXPIRATION_SWEEP_INTERVAL_SECONDS: '3600',
    },
    requests: Array.from({ length: deviceRequests }, next),
    token: await issuer.token({ sub: ids.user, client_id: ids.legalEntity, scope: ALL_SCOPES.join(' ') }),
  };
}
