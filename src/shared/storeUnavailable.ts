/**
 * Is this error "the store is not reachable right now" (a restart, a failover, a network blip) rather
 * than a fault of the request or of our code? Such errors are retried by background work and answer
 * 503 to HTTP clients. Recognised by codes and names only, so no adapter has to be imported here.
 */
// "The database cannot serve now": 57P01-03 admin/crash shutdown, cannot connect now; 53300 too many
// connections; 55000 object not in prerequisite state (what a server answers while it is not
// accepting connections, e.g. in recovery or shutting down); class 08 connection exceptions.
const PG_UNAVAILABLE = new Set(['57P01', '57P02', '57P03', '53300', '55000']);
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT']);
const PG_CLIENT_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
  'Connection terminated unexpectedly',
];
// @eventstore/db-client and mongodb name their connectivity errors; matching the name keeps this pure.
const UNAVAILABLE_NAMES = new Set(['UnavailableError', 'DeadlineExceededError', 'MongoNetworkError', 'MongoServerSelectionError', 'MongoNetworkTimeoutError']);

type ErrorLike = { code?: unknown; name?: unknown; message?: unknown; cause?: unknown };

// Duck-typed, not `instanceof Error`: socket errors are made by Node itself, in another realm than
// code running in a vm context (jest), and must be recognised there too.
export function isStoreUnavailable(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  const { code, name, message, cause } = error as ErrorLike;
  if (typeof code === 'string' && (code.startsWith('08') || PG_UNAVAILABLE.has(code) || NET_CODES.has(code))) return true;
  if (typeof name === 'string' && UNAVAILABLE_NAMES.has(name)) return true;
  if (typeof message === 'string' && PG_CLIENT_MESSAGES.some((known) => message.startsWith(known))) return true;
  // Node's dual-stack connect reports an AggregateError whose parts carry the codes.
  const parts = (error as { errors?: unknown }).errors;
  if (Array.isArray(parts) && parts.some((part) => isStoreUnavailable(part, depth + 1))) return true;
  return cause !== undefined && isStoreUnavailable(cause, depth + 1);
}
