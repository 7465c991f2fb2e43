/**
 * UUIDv7 (RFC 9562 §5.7): 48 bits of Unix milliseconds, then random bits, increasing within this
 * process. The `uuid` package's v7 draws 16 fresh bytes from the system for each id (about 5 µs of CPU,
 * 3 ids per command); crypto.randomUUID() serves its random bits from a cached batch (0.1 µs).
 */
import { randomUUID } from 'node:crypto';

let lastMs = -1;
let sequence = 0;

export function uuidv7(): string {
  // A v4 id: its 122 random bits and its variant (10xx); the time and version replace its first bits.
  const random = randomUUID();
  let ms = Date.now();
  if (ms > lastMs) {
    lastMs = ms;
    // rand_a starts random in its lower half, so the sequence has room to count up within the millisecond.
    sequence = parseInt(random.slice(15, 18), 16) & 0x7ff;
  } else {
    // Same millisecond (or the clock went back): count on, so ids made here stay in order (RFC 9562 §6.2, method 1).
    ms = lastMs;
    sequence += 1;
    if (sequence > 0xfff) {
      lastMs = ms = lastMs + 1;
      sequence = 0;
    }
  }
  const time = ms.toString(16).padStart(12, '0');
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${sequence.toString(16).padStart(3, '0')}${random.slice(18)}`;
}
