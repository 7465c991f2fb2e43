/** The reference data's licences enter as events, once: importing the same file again appends nothing. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { importLicenses } from '../../src/commands/importLicenses.js';
import { legalEntityLicensesStream } from '../../src/domain/license/events.js';
import { readWholeStream } from '../../src/eventStore/eventStore.js';
import { ids } from '../support/fixtures.js';
import { startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import { licenseReferenceData } from './helpers.js';

describe.each(testBackends())('licence import on %s', (backend) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ backend, data: licenseReferenceData() });
  });
  afterAll(async () => t.close());

  it('imported every licence at start, and a second and third import append nothing', async () => {
    const { commandDeps, eventStore } = t.server.context;
    const referenceData = { file: licenseReferenceData() };
    const stream = legalEntityLicensesStream(ids.otherLegalEntity);
    const before = await readWholeStream(eventStore, stream);
    expect(before.map((e) => [e.type, (e.data.license as { id: string }).id])).toEqual(
      referenceData.file.licenses.filter((l) => l.legal_entity_id === ids.otherLegalEntity).map((l) => ['LicenseImported', l.id]),
    );
    expect((await importLicenses(commandDeps, referenceData.file.licenses)).imported).toBe(0);
    expect((await Promise.all([1, 2].map(() => importLicenses(commandDeps, referenceData.file.licenses)))).map((r) => r.imported)).toEqual([0, 0]);
    expect(await readWholeStream(eventStore, stream)).toHaveLength(before.length);
  });

  it('imports a licence added to the reference data later, and only that one', async () => {
    const { commandDeps, eventStore } = t.server.context;
    const referenceData = { file: licenseReferenceData() };
    const added = { ...referenceData.file.licenses[0]!, id: '00000000-0000-4000-8000-0000000001aa', is_primary: false, type: 'PHARMACY' };
    expect((await importLicenses(commandDeps, [...referenceData.file.licenses, added])).imported).toBe(1);
    const events = await readWholeStream(eventStore, legalEntityLicensesStream(added.legal_entity_id));
    expect(events.filter((e) => (e.data.license as { id: string } | undefined)?.id === added.id)).toHaveLength(1);
  });
});
