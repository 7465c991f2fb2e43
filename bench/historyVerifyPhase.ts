/**
 * One phase of the history-verification benchmark (issue 16), in its own process so its peak RSS is
 * its own: `import FILE` (the load alone), `anchor` (sign anchors over the whole imported history), `verify-history` (the store),
 * `export FILE`, `verify-export FILE` (offline). Prints one JSON line: events, seconds, peak RSS.
 */
import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import { anchorKeyResolver } from '../src/audit/anchorRecord.js';
import { loadAnchorKeys } from '../src/audit/anchorKey.js';
import { createAnchorer } from '../src/audit/anchors.js';
import { loadConfig } from '../src/config.js';
import { readHistoryFile } from '../src/history/historyFile.js';
import { importHistory } from '../src/history/importHistory.js';
import { fileLines, verifyHistoryLines } from '../src/history/verifyHistory.js';
import { verifyStoredHistory } from '../src/history/verifyStore.js';
import { createLogger } from '../src/logger.js';
import { exportHistory } from '../src/queries/exportHistory.js';
import { openStores } from '../src/stores.js';

async function main() {
  const [phase, file] = process.argv.slice(2);
  const config = loadConfig();
  const keys = await loadAnchorKeys(config);
  const stores = await openStores(config, createLogger('warn'));
  let events = 0;
  let anchors = 0;
  const started = process.hrtime.bigint();
  try {
    if (phase === 'import') {
      // The load only (chains checked and stored); verify --history reads the log, not the read models.
      events = await importHistory(stores, () => readHistoryFile(file!));
    } else if (phase === 'anchor') {
      const anchorer = createAnchorer({ ...stores, key: keys.signing, settings: { everyEvents: 1, intervalSeconds: 60 }, logger: createLogger('warn') });
      anchors = await anchorer.anchor({ force: true });
      events = await stores.eventStore.countAfter(null);
    } else if (phase === 'verify-history') {
      const result = await verifyStoredHistory(stores, { anchorKeys: anchorKeyResolver(keys.publicJwks) });
      if (result.problem) throw new Error(`verify --history: ${JSON.stringify(result.problem)}`);
      ({ events, anchors } = result);
    } else if (phase === 'export') {
      const out = createWriteStream(file!);
      events = await exportHistory(stores, out);
      out.end();
      await finished(out);
    } else if (phase === 'verify-export') {
      const result = await verifyHistoryLines(fileLines(file!), { anchorKeys: anchorKeyResolver(keys.publicJwks) });
      if (result.problem) throw new Error(`verify --export: ${JSON.stringify(result.problem)}`);
      ({ events, anchors } = result);
    } else throw new Error(`unknown phase ${phase}`);
  } finally {
    await stores.close();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(`${JSON.stringify({ phase, events, anchors, seconds, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
