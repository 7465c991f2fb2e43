/**
 * `cli projections poison list|retry|skip` and what `verify` says of dead letters (issue 28). On the
 * PostgreSQL server the CLI acts beside a running server (the halted projection resumes when the CLI
 * skips its event); on PGlite the data directory is the server's, so the CLI runs once it stopped.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { v4 as uuidv4 } from 'uuid';
import { runCli } from '../support/cli.js';
import { eventually, newEvent } from '../support/events.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';

describe.each(testBackends())('cli projections poison on %s', (backend) => {
  let t: TestServer;
  let eventId: string;
  let position: string;
  beforeAll(async () => {
    t = await startTestServer({ backend });
    const poison = newEvent('DeviceDispenseCreated', { garbage: true });
    eventId = poison.metadata.eventId;
    position = (await t.server.context.eventStore.appendToStream(`device_dispense-${newId()}`, [poison], { expectedRevision: 'no_stream' })).position;
    await eventually(async () => (await t.server.context.deadLetters.list({ status: 'halted' })).length === 2, 15_000, 'two halted letters');
    if (backend === 'pglite') await t.stop();
  }, 60_000);
  afterAll(async () => t.close());

  it('lists, refuses what does not apply (exit 1) and bad usage (exit 2), skips, and verify reports it', async () => {
    const listed = await runCli(['projections', 'poison', 'list', '--projection', 'device_dispenses'], t.env);
    expect(listed.code).toBe(0);
    const [line, ...more] = listed.stdout.trim().split('\n');
    expect(more).toEqual([]);
    const id = line!.split(' ')[0]!;
    expect(line).toMatch(
      new RegExp(
        `^${id} device_dispenses halted event ${eventId} \\(DeviceDispenseCreated, device_dispense-[0-9a-f-]+ revision 0\\) at ${position.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, 1 attempt\\(s\\), recorded \\S+Z: data\\.dispense: Invalid input: expected object, received undefined$`,
      ),
    );
    expect(listed.stderr).toContain('1 dead letter(s)');

    const unknown = uuidv4();
    expect(await runCli(['projections', 'poison', 'retry', unknown], t.env)).toMatchObject({ code: 1, stderr: `Dead letter ${unknown} not found\n` });
    expect((await runCli(['projections', 'poison', 'list', '--status', 'bogus'], t.env)).code).toBe(2);
    expect((await runCli(['projections', 'poison', 'skip'], t.env)).code).toBe(2);
    expect((await runCli(['projections', 'poisons'], t.env)).code).toBe(2);

    const skipped = await runCli(['projections', 'poison', 'skip', id], t.env);
    expect(skipped).toMatchObject({ code: 0, stdout: `${id} device_dispenses: skipped (event ${eventId})\n` });
    const again = await runCli(['projections', 'poison', 'retry', id], t.env);
    expect(again).toMatchObject({ code: 1, stderr: `Dead letter ${id} is skipped: it cannot be retried\n` });
    if (backend === 'postgres')
      await eventually(async () => (await t.server.context.projections.deviceDispenses.status()).halted === null, 10_000, 'the server resumes');

    const status = await runCli(['status'], t.env);
    expect(status.stdout).toContain('device_dispenses: 1 event(s) skipped (left out of the read model and of the replay); see: projections poison list\n');
    expect(status.stdout).toContain('status_change_events: 1 event(s) halted (the projection waits at it); see: projections poison list\n');

    const verified = await runCli(['verify', 'device_dispenses'], t.env);
    expect(verified.stdout).toContain('device_dispenses: 1 event(s) skipped (left out of the read model and of the replay); see: projections poison list\n');
    expect(verified.stdout).toContain(': equal to a fresh replay');
    expect(verified.code).toBe(0);
  }, 120_000);
});
