/**
 * Operator and audit CLI: `npm run cli -- <command>`. It uses the same settings (environment
 * variables) as the server. Long runs report progress (events, events/s) on stderr.
 *
 *   export [--stream NAME] [--from ISO] [--to ISO] [--out FILE]   history as NDJSON (stdout by default)
 *   import <FILE> [--force]                                       load an export into an empty store, then rebuild
 *   rebuild <projection|all>                                      rebuild from zero (server stopped)
 *   verify [read-model|all]                                       read models = a fresh replay? exit 1 if not
 *   verify --history | --export FILE [--anchors-key JWK]          hash chains and signed anchors; exit 1 at the first broken link
 *   anchor                                                        sign an anchor over the history now
 *   status                                                        checkpoint and lag of each projection
 *   projections poison list [--projection NAME] [--status S]      events a projection could not apply (dead letters)
 *   projections poison retry|skip <ID>                            apply one again / do without it
 *   sign <payload.json>                                           sign with the development signer (demo)
 *   token [--sub ID] [--client-id ID] [--scope "a b"]             a development access token (demo)
 *   reference import <FILE> [--replace KIND]                      bulk load of reference data (NDJSON)
 *   --help, <command> --help, --version                           exit codes: see EXIT_CODES
 */
import { constants } from 'node:fs';
import { access, open, readFile, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { ensureDevSigningKey, mintToken, tokenAudience } from '../auth/devKeys.js';
import { ConfigError, importMaxLineBytes, loadConfig, type Config } from '../config.js';
import { LineTooLongError } from '../history/lineBatches.js';
import { createLogger } from '../logger.js';
import { PROJECTION_NAMES, READ_MODEL_PROJECTIONS, createProjections } from '../projections/registry.js';
import { rebuildProjections } from '../projections/replay.js';
import { describeResult, verifyReadModels } from '../projections/verify.js';
import { exportHistory } from '../queries/exportHistory.js';
import { readHistoryFile } from '../history/historyFile.js';
import { HistoryFileError } from '../history/historyLine.js';
import { importHistory } from '../history/importHistory.js';
import demoReferenceData from '../referenceData/demoReferenceData.json' with { type: 'json' };
import { MIS_SCOPES } from '../auth/scopes.js';
import { loadSigner, signPayload } from '../signatures/devPki.js';
import { openStores, type Stores } from '../stores.js';
import { DataDirLockedError } from '../database/dataDirLock.js';
import { createProgress } from './progress.js';
import { packageInfo } from '../observability/packageInfo.js';
import type { JWK } from 'jose';
import { anchorKeyResolver } from '../audit/anchorRecord.js';
import { loadAnchorKeys } from '../audit/anchorKey.js';
import { createAnchorer } from '../audit/anchors.js';
import { fileLines, verifyHistoryLines, type HistoryVerification } from '../history/verifyHistory.js';
import { verifyStoredHistory } from '../history/verifyStore.js';
import { referenceCommand, REFERENCE_HELP, ReferenceUsageError } from './referenceCommand.js';
import { createDeadLetters, type DeadLetters } from '../projections/deadLetters.js';
import { actOnPoisonEvent, listPoisonEvents, poisonListQuerySchema } from '../queries/poisonEvents.js';
import { EsozError } from '../domain/shared/esozError.js';

const USAGE = `usage: npm run cli -- <command>
  export [--stream NAME] [--from ISO] [--to ISO] [--out FILE]
  import <FILE> [--force]
  rebuild <${PROJECTION_NAMES.join('|')}|all>
  verify [${READ_MODEL_PROJECTIONS.join('|')}|all]
  verify --history [--anchors-key FILE] | --export FILE [--anchors-key FILE]
  anchor
  status
  projections poison list [--projection NAME] [--status STATUS] | retry <ID> | skip <ID>
  sign <payload.json>
  token [--sub ID] [--client-id ID] [--scope "a b"]
  reference import <FILE> [--replace KIND]`;

const HELP: Record<string, string> = {
  reference: REFERENCE_HELP,
  export: `usage: npm run cli -- export [--stream NAME] [--from ISO] [--to ISO] [--out FILE]
Writes the recorded history as NDJSON (one event a line, in global order) to stdout or FILE.
  --stream NAME   one stream only (e.g. device_dispense-<id>)
  --from, --to    recorded-at bounds (ISO date-time)
  --out FILE      write to FILE instead of stdout`,
  import: `usage: npm run cli -- import <FILE> [--force]
Loads a history file (NDJSON, as written by export) into an empty event store, checking every line,
then rebuilds the read models. Exit 1 when the file is refused (nothing is written then).
  --force         import even though the store is not empty`,
  rebuild: `usage: npm run cli -- rebuild <${PROJECTION_NAMES.join('|')}|all>
Forgets the read model and replays the whole log into it. Stop the server first.`,
  verify: `usage: npm run cli -- verify [${READ_MODEL_PROJECTIONS.join('|')}|all]
       npm run cli -- verify --history [--anchors-key FILE]
       npm run cli -- verify --export FILE [--anchors-key FILE]
Without options: replays the log into scratch read models and compares them with the live ones.
  --history          recomputes every stream's hash chain and every signed anchor of the store's history
                     (and each stream's head); names the first broken link
  --export FILE      the same for an exported history file, offline (no database, no settings needed)
  --anchors-key FILE public JWK or JWKS of the anchor signatures (--history: default the configured key)
Exit 1 when they differ or a link is broken.`,
  anchor: `usage: npm run cli -- anchor
Appends a signed anchor over the history now (the server does so every AUDIT_ANCHOR_EVERY_EVENTS events).`,
  status: `usage: npm run cli -- status
Prints each projection's checkpoint, the head of the log and the lag in events, then its dead letters
(events it could not apply) by status.`,
  projections: `usage: npm run cli -- projections poison list [--projection NAME] [--status STATUS]
       npm run cli -- projections poison retry <ID>
       npm run cli -- projections poison skip <ID>
The events a projection could not apply (dead letters; docs/projections-and-poison-events.md).
  list            one line per dead letter: id, projection, status, event, position, attempts, error
  retry <ID>      apply it again: a halted projection tries it at once and goes on if it applies;
                  a parked event is tried again, in order, by the projection's next rebuild
  skip <ID>       do without it: never applied; a halted projection moves past it
Exit 1 when the id is unknown or the action does not apply to the letter's status.`,
  sign: `usage: npm run cli -- sign <payload.json>
Signs the JSON payload with the development signer (embedded default, development mode only) and prints the compact JWS.`,
  token: `usage: npm run cli -- token [--sub ID] [--client-id ID] [--scope "a b"]
Mints a development access token (12 h) on the development key (embedded default, development mode only).`,
};

const EXIT_CODES = `exit codes:
  0  done
  1  verify: a read model differs from a fresh replay, or a hash chain or anchor is broken; import: the file was refused;
     projections poison retry|skip: no such dead letter, or the action does not apply to its status
  2  usage: unknown command, option or argument
  3  configuration: an environment variable is invalid, or production mode refuses the command (token, sign)
  4  failure: a store unreachable, a file unreadable, …`;

const FULL_USAGE = `${USAGE}
  --help, -h       this help; <command> --help for one command's
  --version, -v    the version

Settings come from the same environment variables as the server. Long runs show progress on stderr.
${EXIT_CODES}`;

class UsageError extends Error {}
/** A failure with a message of its own (exit 4): a file that cannot be read or written, a store that cannot be opened. */
class Failure extends Error {}

const reason = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** `npm run cli` without --silent: npm has written its banner to stdout before this process started. */
const underNpmBanner = (): boolean => process.env.npm_lifecycle_event === 'cli' && process.env.npm_config_loglevel !== 'silent';

/** Options a command takes none of: any option or argument is a usage error (exit 2). */
const noArguments = (args: string[]) => void parseArgs({ args, options: {}, strict: true, allowPositionals: false });

/** A file the command reads must be readable before any store is opened. */
async function readable(path: string, what: string): Promise<void> {
  try {
    await access(path, constants.R_OK);
  } catch (error) {
    throw new Failure(`cannot read ${what} ${path}: ${reason(error)}`);
  }
}

/**
 * The export's output file, opened (created or truncated) only once the stores answered; `failed`
 * rejects on a later write error (a full disk), which a writer waiting for 'drain' would never see.
 */
async function openOutput(path: string): Promise<{ out: Writable; failed: Promise<never> }> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'w');
  } catch (error) {
    throw new Failure(`cannot write --out ${path}: ${reason(error)}`);
  }
  const out = handle.createWriteStream({ highWaterMark: OUTPUT_BUFFER });
  const failed = new Promise<never>((_, reject) => out.once('error', (error) => reject(new Failure(`cannot write --out ${path}: ${reason(error)}`))));
  failed.catch(() => undefined); // raced below; never an unhandled rejection
  return { out, failed };
}

/** --help / --version, answered before any setting is read (they must work without a valid config). */
function answerHelp(argv: string[]): number | null {
  const [command, ...rest] = argv;
  const asksHelp = (args: string[]) => args.includes('--help') || args.includes('-h');
  if (command === '--version' || command === '-v') {
    process.stdout.write(`${packageInfo.version}\n`);
    return 0;
  }
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    const topic = command === 'help' ? rest[0] : undefined;
    if (command === undefined) return null; // no command: a usage error (exit 2)
    process.stdout.write(`${topic && HELP[topic] ? HELP[topic] : FULL_USAGE}\n`);
    return 0;
  }
  if (HELP[command] && asksHelp(rest)) {
    process.stdout.write(`${HELP[command]}\n`);
    return 0;
  }
  return null;
}

/**
 * The export file's write buffer: 1 MB lets the database's next chunks come in while the last ones are
 * written (at the default 16 KB each 64 KB chunk waited for its write before the next was read).
 */
const OUTPUT_BUFFER = 1 << 20;

const pick = (name: string | undefined, all: readonly string[]) => {
  if (name === undefined || name === 'all') return all;
  if (!all.includes(name)) throw new UsageError(`unknown name ${name}; one of ${all.join(', ')}, all`);
  return [name];
};

async function withStores<T>(config: Config, work: (stores: Stores) => Promise<T>): Promise<T> {
  let stores: Stores;
  try {
    stores = await openStores(config, createLogger(process.env.LOG_LEVEL ?? 'warn', { stderr: true }));
  } catch (error) {
    if (error instanceof DataDirLockedError) throw new Failure(`cannot open the store: ${error.message}`);
    throw new Failure(`cannot open the store (${config.EVENT_STORE}): ${reason(error)}`);
  }
  try {
    return await work(stores);
  } finally {
    await stores.close();
  }
}

async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const answered = answerHelp(argv);
  if (answered !== null) return answered;
  if (command === undefined || !HELP[command]) throw new UsageError(command ? `unknown command ${command}` : 'no command');
  // The offline check needs no settings at all (an auditor's machine).
  if (command === 'verify' && rest.includes('--export')) return verifyExport(rest);
  const config = loadConfig();
  switch (command) {
    case 'export': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { stream: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, out: { type: 'string' } },
      });
      for (const bound of [values.from, values.to]) if (bound !== undefined && Number.isNaN(Date.parse(bound))) throw new UsageError(`not a date: ${bound}`);
      if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
      // npm's banner went to stdout first: a file or pipe of it would not be a history file.
      if (!values.out && underNpmBanner() && !process.stdout.isTTY)
        throw new UsageError(
          "npm run wrote its banner to stdout before the history: use 'npx esoz-cli export > FILE', 'npm run --silent cli -- export > FILE' or --out FILE",
        );
      return withStores(config, async (stores) => {
        const file = values.out ? await openOutput(values.out) : null;
        const out = file?.out ?? process.stdout;
        const failed = file?.failed ?? new Promise<never>(() => undefined);
        // The whole log's size is the total only for an unfiltered export; otherwise no ETA.
        const total = values.stream || values.from || values.to ? null : await stores.eventStore.countAfter(null);
        const progress = createProgress('export', { total });
        const exported = exportHistory(stores, out, {
          ...(values.stream ? { stream: values.stream } : {}),
          ...(values.from ? { from: values.from } : {}),
          ...(values.to ? { to: values.to } : {}),
          onProgress: progress.add,
        });
        exported.catch(() => undefined); // raced with the output's failure
        const written = await Promise.race([exported, failed]);
        progress.done();
        if (file) {
          out.end();
          await Promise.race([finished(out), failed]);
        }
        process.stderr.write(`exported ${written} event(s)\n`);
        return 0;
      });
    }
    case 'import': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { force: { type: 'boolean' } } });
      const file = positionals[0];
      if (!file || positionals.length > 1) throw new UsageError('name one history file (NDJSON, as written by export)');
      await readable(file, 'the history file');
      return withStores(config, async (stores) => {
        const progress = createProgress('import');
        let imported: number;
        try {
          imported = await importHistory(stores, () => readHistoryFile(file, { maxLineBytes: config.IMPORT_MAX_LINE_BYTES }), {
            force: values.force ?? false,
            onProgress: progress.add,
          });
        } catch (error) {
          if (!(error instanceof HistoryFileError)) throw error;
          process.stderr.write(`import refused, nothing was written: ${error.message}\n`);
          return 1;
        }
        progress.done();
        process.stderr.write(`imported ${imported} event(s); rebuilding the read models\n`);
        const rebuilding = createProgress('rebuild all', { total: await stores.eventStore.countAfter(null) });
        await rebuildProjections(stores.eventStore, stores.database, Object.values(await guardedProjections(config, stores)), rebuilding.add);
        rebuilding.done();
        return 0;
      });
    }
    case 'rebuild': {
      const { positionals } = parseArgs({ args: rest, options: {}, allowPositionals: true });
      if (positionals.length !== 1) throw new UsageError('name a projection, or all');
      const names = pick(positionals[0], PROJECTION_NAMES);
      return withStores(config, async (stores) => {
        const projections = Object.values(await guardedProjections(config, stores)).filter((p) => names.includes(p.name));
        // One reader feeds them all, beside the live read models (blue/green); the line names each one.
        const progress = createProgress(`rebuild ${projections.map((p) => p.name).join(', ')}`, { total: await stores.eventStore.countAfter(null) });
        await rebuildProjections(stores.eventStore, stores.database, projections, progress.add);
        progress.done();
        return 0;
      });
    }
    case 'verify': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { history: { type: 'boolean' }, 'anchors-key': { type: 'string' } },
      });
      if (values.history) {
        if (positionals.length) throw new UsageError('verify --history takes no projection name');
        const keys = values['anchors-key'] ? await readAnchorKeys(values['anchors-key']) : anchorKeyResolver((await loadAnchorKeys(config)).publicJwks);
        return withStores(config, async (stores) => {
          const progress = createProgress('verify --history', { total: await stores.eventStore.countAfter(null) });
          const result = await verifyStoredHistory(stores, { anchorKeys: keys, onProgress: progress.add });
          progress.done();
          return reportHistory(result);
        });
      }
      if (values['anchors-key']) throw new UsageError('--anchors-key goes with --history or --export');
      if (positionals.length > 1) throw new UsageError(`unexpected argument ${positionals[1]}`);
      const names = pick(positionals[0], READ_MODEL_PROJECTIONS);
      return withStores(config, async (stores) => {
        const progress = createProgress('verify (replaying)', { total: await stores.eventStore.countAfter(null) });
        const deadLetters = await createDeadLetters(stores.database);
        const results = await verifyReadModels({ ...stores, deadLetters }, names, progress.add);
        progress.done();
        for (const result of results) process.stdout.write(`${describeResult(result)}\n`);
        // What the read models knowingly lack (the replay leaves the same events out).
        for (const line of await describeDeadLetters(deadLetters, names)) process.stdout.write(`${line}\n`);
        return results.every((r) => r.differences.length === 0 && !r.moved) ? 0 : 1;
      });
    }
    case 'anchor':
      noArguments(rest);
      return withStores(config, async (stores) => {
        const anchorer = createAnchorer({
          database: stores.database,
          eventStore: stores.eventStore,
          key: (await loadAnchorKeys(config)).signing,
          settings: { everyEvents: config.AUDIT_ANCHOR_EVERY_EVENTS, intervalSeconds: config.AUDIT_ANCHOR_INTERVAL_SECONDS },
          logger: createLogger(process.env.LOG_LEVEL ?? 'warn', { stderr: true }),
        });
        const written = await anchorer.anchor({ force: true });
        process.stdout.write(
          written ? `wrote ${written} anchor(s)\n` : 'nothing to anchor (no event since the last anchor, or another process is anchoring)\n',
        );
        return 0;
      });
    case 'status':
      noArguments(rest);
      return withStores(config, async (stores) => {
        const head = await stores.eventStore.headPosition();
        for (const projection of Object.values(await createProjections(stores))) {
          const checkpoint = await projection.readCheckpoint();
          process.stdout.write(
            `${projection.name}: checkpoint ${checkpoint ?? '-'}, head ${head ?? '-'}, lag ${await stores.eventStore.countAfter(checkpoint)} event(s)\n`,
          );
        }
        for (const line of await describeDeadLetters(await createDeadLetters(stores.database), PROJECTION_NAMES)) process.stdout.write(`${line}\n`);
        return 0;
      });
    case 'projections':
      return projectionsCommand(config, rest);
    case 'sign': {
      const { positionals } = parseArgs({ args: rest, options: {}, allowPositionals: true });
      if (positionals.length !== 1) throw new UsageError('name the JSON file to sign');
      // Production never signs with (or creates) a development signer, whatever the trust store.
      if (config.PRODUCTION) throw new ConfigError('sign: production mode (NODE_ENV=production) has no development signer; sign with a qualified signature');
      const file = positionals[0]!;
      const dir = config.DS_TRUSTED_CA_FILE ? null : join(config.DATA_DIR, 'dev', 'pki');
      if (!dir) throw new UsageError('DS_TRUSTED_CA_FILE is set: sign with your own qualified signature, not the development signer');
      let payload: object;
      try {
        payload = JSON.parse(await readFile(file, 'utf8')) as object;
      } catch (error) {
        throw new Failure(`cannot read the payload ${file}: ${reason(error)}`);
      }
      const signer = await loadSigner(join(dir, 'signer-cert.pem'), join(dir, 'signer-key')).catch((error: unknown) => {
        throw new Failure(`cannot load the development signer from ${dir} (the server creates it when it first starts): ${reason(error)}`);
      });
      process.stdout.write(`${await signPayload(payload, signer)}\n`);
      return 0;
    }
    case 'token': {
      if (config.PRODUCTION)
        throw new ConfigError('token: production mode (NODE_ENV=production) mints no access tokens; they come from your identity provider');
      if (config.AUTH_JWKS_FILE || config.AUTH_JWKS_URL) throw new UsageError('AUTH_JWKS_* is set: tokens come from your identity provider');
      const { values } = parseArgs({ args: rest, options: { sub: { type: 'string' }, 'client-id': { type: 'string' }, scope: { type: 'string' } } });
      const user = demoReferenceData.users[0]!;
      const employee = demoReferenceData.employees.find((e) => e.party_id === user.party_id)!;
      const key = await ensureDevSigningKey(join(config.DATA_DIR, 'dev', 'auth'));
      const token = await mintToken(key.privateJwk, {
        sub: values.sub ?? user.id,
        client_id: values['client-id'] ?? employee.legal_entity_id,
        scope: values.scope ?? MIS_SCOPES.join(' '),
        // The same iss/aud the server requires with the development key.
        ...tokenAudience(config, true),
        expiresIn: Math.min(12 * 3600, config.AUTH_MAX_TOKEN_LIFETIME_SECONDS),
      });
      process.stdout.write(`${token}\n`);
      return 0;
    }
    case 'reference':
      return referenceCommand(rest, (work) => withStores(config, (stores) => work(stores.database)), { maxLineBytes: config.IMPORT_MAX_LINE_BYTES });
    default:
      throw new UsageError(command ? `unknown command ${command}` : 'no command');
  }
}

/** The projections behind their dead letters, as the server runs them (skipped and parked events left out). */
async function guardedProjections(config: Config, stores: Stores) {
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  return createProjections(stores, { deadLetters: await createDeadLetters(stores.database), onPoison: config.ON_POISON_EVENT, logger });
}

async function describeDeadLetters(deadLetters: DeadLetters, names: readonly string[]): Promise<string[]> {
  const counts = (await deadLetters.counts()).filter((c) => names.includes(c.projection) && c.status !== 'resolved');
  return counts.map(
    ({ projection, status, count }) =>
      `${projection}: ${count} event(s) ${status}${status === 'halted' ? ' (the projection waits at it)' : ' (left out of the read model and of the replay)'}; see: projections poison list`,
  );
}

async function projectionsCommand(config: Config, rest: string[]): Promise<number> {
  const [group, action, ...args] = rest;
  if (group !== 'poison') throw new UsageError('projections poison list|retry|skip');
  if (action === 'list') {
    const { values, positionals } = parseArgs({ args, options: { projection: { type: 'string' }, status: { type: 'string' } } });
    if (positionals.length) throw new UsageError('projections poison list takes no argument');
    const query = poisonListQuerySchema.safeParse(values);
    if (!query.success) throw new UsageError(`projections poison list: ${query.error.issues[0]!.path.join('.')}: ${query.error.issues[0]!.message}`);
    return withStores(config, async (stores) => {
      const letters = await listPoisonEvents(await createDeadLetters(stores.database), query.data);
      for (const l of letters)
        process.stdout.write(
          `${l.id} ${l.projection} ${l.status} event ${l.event_id} (${l.event_type}, ${l.stream_name} revision ${l.revision}) at ${l.position}, ${l.attempts} attempt(s), recorded ${l.recorded_at}: ${l.error}\n`,
        );
      process.stderr.write(`${letters.length} dead letter(s)\n`);
      return 0;
    });
  }
  if (action === 'retry' || action === 'skip') {
    const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
    if (positionals.length !== 1) throw new UsageError(`projections poison ${action} <ID>`);
    return withStores(config, async (stores) => {
      try {
        const letter = await actOnPoisonEvent(await createDeadLetters(stores.database), positionals[0]!, action);
        process.stdout.write(`${letter.id} ${letter.projection}: ${letter.status} (event ${letter.event_id})\n`);
        return 0;
      } catch (error) {
        if (!(error instanceof EsozError)) throw error;
        process.stderr.write(`${error.message}\n`);
        return 1;
      }
    });
  }
  throw new UsageError('projections poison list|retry|skip');
}

async function readAnchorKeys(path: string) {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`--anchors-key ${path}: not a readable JSON file (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null) throw new UsageError(`--anchors-key ${path}: not a JWK or JWKS`);
  return anchorKeyResolver(parsed as JWK);
}

async function verifyExport(rest: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: rest, options: { export: { type: 'string' }, 'anchors-key': { type: 'string' } } });
  if (positionals.length || !values.export) throw new UsageError('verify --export FILE [--anchors-key FILE]');
  await readable(values.export, 'the history file');
  const keys = values['anchors-key'] ? await readAnchorKeys(values['anchors-key']) : null;
  const progress = createProgress('verify --export');
  // The same line bound as import (a file from outside); read alone, this command needs no other setting.
  const bound = importMaxLineBytes.safeParse(process.env.IMPORT_MAX_LINE_BYTES || undefined);
  if (!bound.success) throw new ConfigError(`Invalid configuration: IMPORT_MAX_LINE_BYTES ${bound.error.issues[0]?.message ?? 'is invalid'}`);
  let result: HistoryVerification;
  try {
    result = await verifyHistoryLines(fileLines(values.export, { maxLineBytes: bound.data }), { anchorKeys: keys, onProgress: progress.add });
  } catch (error) {
    if (!(error instanceof LineTooLongError)) throw error;
    process.stdout.write(`history refused at line ${error.lineNumber}: longer than IMPORT_MAX_LINE_BYTES (${error.maxLineBytes} bytes)\n`);
    return 1;
  }
  progress.done();
  return reportHistory(result);
}

function reportHistory(result: HistoryVerification): number {
  const { problem } = result;
  if (problem) {
    const where = [
      problem.line ? `line ${problem.line}` : 'stream table',
      problem.stream !== null ? `stream ${problem.stream}` : null,
      problem.revision !== null ? `revision ${problem.revision}` : null,
      problem.eventId !== null ? `event ${problem.eventId}` : null,
    ].filter((part) => part !== null);
    process.stdout.write(`history BROKEN at ${where.join(', ')}: ${problem.message}\n`);
    return 1;
  }
  const signatures = result.signaturesChecked ? 'signatures checked' : 'signatures NOT checked (no --anchors-key)';
  process.stdout.write(
    `history intact: ${result.events} event(s) in ${result.streams} stream(s), ${result.anchors} anchor(s) (${signatures}); ` +
      `the last anchor covers ${result.anchoredEvents} of ${result.events} event(s)\n`,
  );
  return 0;
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    // node:util parseArgs rejects unknown options and stray arguments with ERR_PARSE_ARGS_* codes.
    const code = (error as { code?: unknown } | null)?.code;
    if (error instanceof UsageError || error instanceof ReferenceUsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`${(error as Error).message}\n${USAGE}\n  --help for more\n`);
      process.exit(2);
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(3);
    }
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(4);
  },
);
