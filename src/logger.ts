import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { service: 'esoz-device-dispense-registry' } });
}

/** Tests and one-shot tools: silent unless LOG_LEVEL asks otherwise. */
export const silentLogger = (): Logger => pino({ level: process.env.LOG_LEVEL ?? 'silent' });
