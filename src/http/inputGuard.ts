/**
 * The trust boundary for what a request carries: its path, query string and JSON body. Anything a
 * store could not hold (NUL, unpaired surrogates), cannot decode (malformed percent-encoding, invalid
 * UTF-8) or that nests absurdly deep is refused here with a 4xx, so no command, job or store sees it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isUtf8 } from 'node:buffer';
import type { NextFunction, Request, Response } from 'express';
import { badRequest, EsozError, validationFailed } from '../domain/shared/esozError.js';
import { sendError } from './envelope.js';
import { findJsonProblem, isStorableText, MAX_JSON_DEPTH } from '../domain/shared/jsonText.js';

// C0 controls and DEL: no id, stream name or path segment of this API contains them.
const CONTROL = /[\u0000-\u001f\u007f]/;

const decode = (raw: string): string | null => {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null; // malformed percent-encoding or bytes that are not UTF-8
  }
};

function pathProblem(rawPath: string): EsozError | null {
  for (const segment of rawPath.split('/')) {
    const decoded = decode(segment);
    if (decoded === null) return badRequest('Malformed request. The path is not valid percent-encoded UTF-8.');
    if (CONTROL.test(decoded)) return badRequest('Malformed request. The path contains control characters.');
  }
  return null;
}

function queryProblem(rawQuery: string): EsozError | null {
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue;
    const at = pair.indexOf('=');
    const name = decode((at < 0 ? pair : pair.slice(0, at)).replace(/\+/g, ' '));
    const value = decode((at < 0 ? '' : pair.slice(at + 1)).replace(/\+/g, ' '));
    if (name === null || value === null || !isStorableText(name) || CONTROL.test(name))
      return badRequest('Malformed request. The query string is not valid percent-encoded UTF-8.');
    // A readable name with an unusable value: name the parameter, as a schema violation would.
    if (CONTROL.test(value))
      return validationFailed([
        {
          entry: `$.${name}`,
          entry_type: 'query_parameter',
          rules: [{ rule: 'format', description: 'must not contain control characters', params: [] }],
        },
      ]);
  }
  return null;
}

/** Before routing: the request line must decode to text. */
export function guardRequestLine(req: Request, res: Response, next: NextFunction): void {
  const url = req.originalUrl;
  const at = url.indexOf('?');
  const problem = pathProblem(at < 0 ? url : url.slice(0, at)) ?? (at < 0 ? null : queryProblem(url.slice(at + 1)));
  if (problem) return sendError(req, res, problem);
  next();
}

/** What a parsed JSON body is refused for: a string (or key) that cannot be stored, or too deep a document. */
export function jsonBodyError(body: unknown): EsozError | null {
  const problem = findJsonProblem(body, 'json_data_property');
  if (problem?.kind === 'too_deep')
    return new EsozError(400, 'request_malformed', `Malformed request. JSON is nested deeper than ${MAX_JSON_DEPTH} levels.`, [
      { entry_type: 'request', rules: [{ rule: 'json', description: `nested deeper than ${MAX_JSON_DEPTH} levels`, params: [] }] },
    ]);
  if (problem?.kind === 'text') return validationFailed([problem.entry]);
  return null;
}

/** After JSON parsing: every string (and key) must be storable, and the document shallow enough. */
export function guardJsonBody(req: Request, res: Response, next: NextFunction): void {
  if (req.body === undefined) return next();
  const error = jsonBodyError(req.body);
  if (error) return sendError(req, res, error);
  next();
}

const strictDecoder = (label: string) => {
  try {
    return new TextDecoder(label, { fatal: true });
  } catch {
    return null; // a label the WHATWG decoders do not know (utf-32, utf-7)
  }
};

/** The error the body reader raises for JSON it cannot parse: the frame answers it as 400 "invalid JSON". */
const notJson = (reason: string) => Object.assign(new Error(reason), { status: 400, type: 'entity.parse.failed' });

/**
 * A body's bytes must be valid in their charset before they are decoded: a decoder that is not fatal
 * (iconv-lite's, Buffer's) turns an invalid byte into U+FFFD, and the text stored would not be the text
 * sent. Throws the error of unparseable JSON (400, as any malformed JSON); a `utf-*` charset no strict
 * decoder knows is refused as an unsupported charset (415).
 */
export function checkBodyBytes(bytes: Buffer, charset: string | null = 'utf-8'): void {
  const label = (charset ?? 'utf-8').toLowerCase();
  if (label === 'utf-8' || label === 'utf8') {
    if (!isUtf8(bytes)) throw notJson('the body is not valid UTF-8');
    return;
  }
  const decoder = strictDecoder(label);
  if (!decoder) throw Object.assign(new Error(`unsupported charset ${label}`), { status: 415, type: 'charset.unsupported' });
  try {
    decoder.decode(bytes);
  } catch {
    throw notJson(`the body is not valid ${label}`);
  }
}

/** express.json's `verify`: runs on the raw (inflated) bytes before they are decoded. */
export function verifyJsonBytes(_req: IncomingMessage, _res: ServerResponse, bytes: Buffer, charset: string | null): void {
  checkBodyBytes(bytes, charset);
}
