/**
 * An ЕСОЗ error: HTTP status, `error.type` and the message that the seeds state verbatim.
 * It carries the HTTP status and body ЕСОЗ answers with, but does no I/O: deciders and commands throw
 * it, the HTTP layer and the job worker render it.
 */
export type Rule = { rule: string; description: string; params: unknown[] };
export type InvalidEntry = { entry?: string; entry_type: string; rules: Rule[] };

export type EsozErrorBody = { type: string; message?: string; invalid?: InvalidEntry[] };

export class EsozError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string | undefined,
    readonly invalid?: InvalidEntry[],
  ) {
    super(message ?? type);
    this.name = 'EsozError';
    this.hasMessage = message !== undefined;
  }
  readonly hasMessage: boolean;

  toBody(): EsozErrorBody {
    return {
      type: this.type,
      ...(this.hasMessage ? { message: this.message } : {}),
      ...(this.invalid ? { invalid: this.invalid } : {}),
    };
  }
}

export const DEFAULT_MESSAGES = {
  request_malformed: 'Malformed request. Probably, you have sent corrupted JSON.',
  request_conflict: 'The request could not be completed due to a conflict with the current state of the resource.',
  content_type_invalid:
    "Invalid Content-Type header. Try to set 'Content-Type: application/json' header: http://docs.apimanifest.apiary.io/#introduction/interacting-with-api/content-type.",
  validation_failed:
    'Validation failed. You can find validators description at our API Manifest: http://docs.apimanifest.apiary.io/#introduction/interacting-with-api/errors.',
} as const;

export const badRequest = (message: string) => new EsozError(400, 'request_malformed', message);
export const accessDenied = (message = 'Invalid access token') => new EsozError(401, 'access_denied', message);
export const forbidden = (message: string) => new EsozError(403, 'forbidden', message);
export const missingScope = (scope: string) => forbidden(`Your scope does not allow to access this resource. Missing allowances: ${scope}`);
/** The seeds write 404 ('not_found'): the type is the message. */
export const notFound = (message = 'not_found') => new EsozError(404, 'not_found', message);
export const conflict = (message: string) => new EsozError(409, 'request_conflict', message);

/** A business 422 with the seed's message; `entry` names the JSON path when the rule is bound to one. */
export const unprocessable = (message: string, entry?: string, rule = 'invalid') =>
  new EsozError(
    422,
    'validation_failed',
    message,
    entry ? [{ entry, entry_type: 'json_data_property', rules: [{ rule, description: message, params: [] }] }] : [],
  );

/** 422 "value is not allowed in enum" at `entry`, as ЕСОЗ's JSON-schema validator words it. */
export const notAllowedInEnum = (entry: string, allowed: string[]) =>
  new EsozError(422, 'validation_failed', 'value is not allowed in enum', [
    { entry, entry_type: 'json_data_property', rules: [{ rule: 'inclusion', description: 'value is not allowed in enum', params: allowed }] },
  ]);

export const validationFailed = (invalid: InvalidEntry[]) => new EsozError(422, 'validation_failed', DEFAULT_MESSAGES.validation_failed, invalid);

export const internalError = () => new EsozError(500, 'internal_error', 'Internal server error');
export const serviceUnavailable = () => new EsozError(503, 'service_unavailable', 'Service is temporarily unavailable. Please retry later.');
