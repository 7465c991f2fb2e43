import { writeHistory } from './readSideHistory.js';
const n = await writeHistory('/tmp/h200k.ndjson', 200_000);
console.log(n);
