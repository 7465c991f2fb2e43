/** npm run bench [-- commands | http | hashing | read-side [EVENTS ...] | history [EVENTS] | reference] */
import { historyVerifyBench } from './historyVerify.js';
import { readSideBench } from './readSide.js';

const [which = 'commands', ...rest] = process.argv.slice(2);
if (which === 'read-side') {
  const sizes = rest.length ? rest.map(Number) : [200_000, 1_000_000];
  readSideBench(sizes).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
} else if (which === 'history') {
  historyVerifyBench(rest.length ? Number(rest[0]) : 100_000).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
} else if (which === 'commands') await import('./commandRate.js');
else if (which === 'http') await import('./httpOverhead.js');
else if (which === 'hashing') await import('./hashCost.js');
else if (which === 'reference') await import('./reference.js');
else {
  process.stderr.write('usage: npm run bench [-- commands | http | hashing | read-side [EVENTS ...] | history [EVENTS] | reference]\n');
  process.exit(2);
}
