import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/** `stderr`: the CLI, whose stdout is the command's output (an export piped to a file must hold only history lines). */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', { stderr = false }: { stderr?: boolean } = {}): Logger {
  const options = { level, base: { service: 'esoz-device-dispense-registry' } };
  return stderr ? pino(options, pino.destination(2)) : pino(options);
}

/** Tests and one-shot tools: silent unless LOG_LEVEL asks otherwise. */
export const silentLogger = (): Logger => pino({ level: process.env.LOG_LEVEL ?? 'silent' });
