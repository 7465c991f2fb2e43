/** The operator CLI's help, version, usage errors and exit codes; its progress output on and off a TTY. */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { createProgress } from '../../src/cli/progress.js';
import { runCli } from '../support/cli.js';

const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

describe('cli', () => {
  it('--help lists the commands and the exit codes; each command has its own --help; --version', async () => {
    const [help, version_, ...commands] = await Promise.all([
      runCli(['--help'], {}),
      runCli(['--version'], {}),
      ...['export', 'import', 'rebuild', 'verify', 'status', 'sign', 'token'].map((command) => runCli([command, '--help'], {})),
    ]);
    expect(help.code).toBe(0);
    for (const command of ['export', 'import', 'rebuild', 'verify', 'status', 'sign', 'token']) expect(help.stdout).toContain(`  ${command}`);
    expect(help.stdout).toMatch(/exit codes:[\s\S]*2 {2}usage/);
    expect(version_).toMatchObject({ code: 0, stdout: `${version}\n` });
    for (const result of commands) {
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^usage: npm run cli -- \w+/);
    }
  }, 60_000);

  it('an unknown command or option prints the usage on stderr and exits 2; a bad setting exits 3', async () => {
    const [unknown, option, config] = await Promise.all([
      runCli(['frobnicate'], {}),
      runCli(['export', '--nope'], {}),
      runCli(['status'], { PORT: 'not-a-port' }),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toMatch(/unknown command frobnicate\nusage: npm run cli/);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain('usage: npm run cli');
    expect(config.code).toBe(3);
    expect(config.stderr).toContain('PORT must be a port number');
  }, 60_000);
});

/** A stream that records what is written; `isTTY` as asked. */
function stream(isTTY: boolean) {
  const chunks: string[] = [];
  type Terminal = Writable & { isTTY: boolean; columns: number };
  const out = new Writable({ write: (chunk: Buffer, _encoding, done) => void (chunks.push(chunk.toString()), done()) }) as Terminal;
  out.isTTY = isTTY;
  out.columns = 120;
  return { out: out as unknown as NodeJS.WriteStream, text: () => chunks.join('') };
}

describe('progress', () => {
  it('off a terminal: plain lines only, ending with the line scripts match', () => {
    const { out, text } = stream(false);
    const progress = createProgress('rebuild licenses', { out, total: 10 });
    progress.add(4);
    progress.add(6);
    progress.done();
    expect(text()).toMatch(/^rebuild licenses: 10 events, [\d,]+ events\/s in \d+\.\d\d s\n$/);
  });

  it('on a terminal: a bar with count, total, rate and ETA, then the same final line', () => {
    const { out, text } = stream(true);
    const progress = createProgress('verify (replaying)', { out, total: 1000 });
    for (let i = 0; i < 10; i++) progress.add(50);
    progress.done();
    expect(text()).toMatch(/verify \(replaying\) \[[^\]]*\] \d+\/1000 events \| \d+ events\/s \| ETA /);
    expect(text()).toMatch(/verify \(replaying\): 500 events, [\d,]+ events\/s in \d+\.\d\d s\n$/);
  });
});
