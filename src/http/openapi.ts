/**
 * OpenAPI 3.1 of this API, generated from the zod schemas the routes validate with (z.toJSONSchema),
 * so the document cannot drift from validation. The table below names each operation's path, scope
 * and schemas; a test checks it against the routes the router really has, both ways.
 */
import { z } from 'zod';
import { createDeviceDispenseRequestSchema } from '../commands/createDeviceDispense.js';
import { createLicenseRequestSchema } from '../commands/createLicense.js';
import { signedRequestSchema } from '../commands/shared/deviceDispenses.js';
import { updateLicenseRequestSchema } from '../commands/updateLicense.js';
import { asOfQuerySchema, historyQuerySchema, streamEventsQuerySchema } from '../queries/audit.js';
import { searchDeviceDispensesQuerySchema } from '../queries/deviceDispenses.js';
import { listLicensesQuerySchema } from '../queries/licenses.js';
import { poisonListQuerySchema } from '../queries/poisonEvents.js';
import { packageInfo } from '../observability/packageInfo.js';
import { REFERENCE_KINDS } from '../referenceData/records.js';
import { AUDITOR, classesOf, EMPLOYEE, EMPLOYEE_IN_JOB, EMPLOYEE_OR_AUDITOR, JOB_READER, OPERATOR, PUBLIC, type Callers } from './callerClasses.js';

type Method = 'get' | 'post' | 'patch' | 'put';
type Schema = z.ZodType;
/** `scope`: the one scope required; an array: any one of them; null: any valid token; 'public': no token. */
type Operation = {
  method: Method;
  path: string;
  summary: string;
  tag: string;
  scope: string | string[] | null | 'public' | 'metrics';
  body?: Schema;
  query?: Schema;
  /** 202 + job (async ЕСОЗ method) or the success status of a sync one. */
  answer: 202 | 201 | 200 | 'list' | 'job' | 'raw' | 'started';
  rawContent?: string;
  signed?: boolean;
  /** The body is NDJSON (application/x-ndjson), one record a line. */
  ndjson?: boolean;
  /** Who may call it (docs/caller-classes.md); src/http/callerClasses.ts enforces it for every route. */
  callers: Callers;
};

/** One reference record: the fields of its kind (see the kinds in docs/reference-data.md) and its version. */
const referenceRecordSchema = z.looseObject({
  id: z.string().optional().describe('the record id (dictionaries and config: name)'),
  name: z.string().optional(),
  version: z.number().int().min(1).optional().describe('raised by every upstream change; absent means 1'),
});
const REFERENCE = '/api/admin/reference';
const KINDS_TEXT = `Kinds: ${REFERENCE_KINDS.join(', ')}.`;

const DISPENSES = '/api/patients/:patient_id/device_dispenses';
const AUDIT = ['audit:read', 'audit:read_all'];

/** A service endpoint (index, health, metrics, this document): no token, a raw answer of `rawContent`. */
const service = (path: string, summary: string, rawContent: string): Operation => ({
  method: 'get',
  path,
  summary,
  tag: 'Service',
  scope: 'public',
  callers: PUBLIC,
  answer: 'raw',
  rawContent,
});

export const OPERATIONS: readonly Operation[] = [
  {
    method: 'post',
    path: DISPENSES,
    summary: 'Create a device dispense',
    tag: 'Device dispenses',
    scope: 'device_dispense:write',
    callers: EMPLOYEE_IN_JOB,
    body: createDeviceDispenseRequestSchema,
    answer: 202,
  },
  {
    method: 'patch',
    path: `${DISPENSES}/:id/actions/complete`,
    summary: 'Complete a device dispense (signed)',
    tag: 'Device dispenses',
    scope: 'device_dispense:complete',
    callers: EMPLOYEE_IN_JOB,
    body: signedRequestSchema,
    answer: 202,
    signed: true,
  },
  {
    method: 'patch',
    path: `${DISPENSES}/:id/actions/stop`,
    summary: 'Stop a device dispense',
    tag: 'Device dispenses',
    scope: 'device_dispense:stop',
    callers: EMPLOYEE_IN_JOB,
    answer: 202,
  },
  {
    method: 'patch',
    path: `${DISPENSES}/:id/actions/mark_in_error`,
    summary: 'Mark a device dispense in error (signed)',
    tag: 'Device dispenses',
    scope: 'device_dispense:mark_in_error',
    callers: EMPLOYEE_IN_JOB,
    body: signedRequestSchema,
    answer: 202,
    signed: true,
  },
  {
    method: 'get',
    path: `${DISPENSES}/:id`,
    summary: "Get a patient's device dispense",
    tag: 'Device dispenses',
    scope: 'device_dispense:read',
    callers: EMPLOYEE,
    answer: 200,
  },
  {
    method: 'get',
    path: DISPENSES,
    summary: "Search a patient's device dispenses",
    tag: 'Device dispenses',
    scope: 'device_dispense:read',
    callers: EMPLOYEE,
    query: searchDeviceDispensesQuerySchema,
    answer: 'list',
  },
  {
    method: 'get',
    path: '/api/device_dispenses',
    summary: "Search the legal entity's device dispenses",
    tag: 'Device dispenses',
    scope: 'device_dispense:read',
    callers: EMPLOYEE,
    query: searchDeviceDispensesQuerySchema,
    answer: 'list',
  },
  {
    method: 'post',
    path: '/api/licenses',
    summary: 'Create a licence',
    tag: 'Licences',
    scope: 'license:write',
    callers: EMPLOYEE,
    body: createLicenseRequestSchema,
    answer: 201,
  },
  {
    method: 'patch',
    path: '/api/licenses/:id',
    summary: 'Update a licence',
    tag: 'Licences',
    scope: 'license:write',
    callers: EMPLOYEE,
    body: updateLicenseRequestSchema,
    answer: 200,
  },
  {
    method: 'get',
    path: '/api/licenses',
    summary: "List the legal entity's licences",
    tag: 'Licences',
    scope: 'license:read',
    callers: EMPLOYEE,
    query: listLicensesQuerySchema,
    answer: 'list',
  },
  { method: 'get', path: '/api/licenses/:id', summary: 'Get a licence', tag: 'Licences', scope: 'license:read', callers: EMPLOYEE, answer: 200 },
  {
    method: 'get',
    path: '/api/audit/streams/:stream/events',
    summary: "A stream's recorded events",
    tag: 'Audit',
    scope: AUDIT,
    callers: EMPLOYEE_OR_AUDITOR,
    query: streamEventsQuerySchema,
    answer: 'list',
  },
  {
    method: 'get',
    path: '/api/audit/streams/:stream/proof',
    summary: "A stream's hash chain and the latest signed anchor over it, with the Merkle path of its head",
    tag: 'Audit',
    scope: AUDIT,
    callers: EMPLOYEE_OR_AUDITOR,
    answer: 200,
  },
  {
    method: 'get',
    path: '/api/audit/events',
    summary: 'The global event history, in order',
    tag: 'Audit',
    scope: AUDIT,
    callers: EMPLOYEE_OR_AUDITOR,
    query: historyQuerySchema,
    answer: 200,
  },
  {
    method: 'get',
    path: '/api/audit/device_dispenses/:id',
    summary: 'A device dispense as of a moment',
    tag: 'Audit',
    scope: AUDIT,
    callers: EMPLOYEE_OR_AUDITOR,
    query: asOfQuerySchema,
    answer: 200,
  },
  {
    method: 'get',
    path: '/api/audit/licenses/:id',
    summary: 'A licence as of a moment',
    tag: 'Audit',
    scope: AUDIT,
    callers: EMPLOYEE_OR_AUDITOR,
    query: asOfQuerySchema,
    answer: 200,
  },
  {
    method: 'get',
    path: '/api/admin/projections',
    summary: "Projections' checkpoints, lag and their last server-side rebuild",
    tag: 'Operations',
    scope: 'admin:read',
    callers: OPERATOR,
    answer: 'list',
  },
  {
    method: 'post',
    path: '/api/admin/projections/:name/rebuild',
    summary: 'Rebuild a projection (or all) beside the live read model, then swap it in (blue/green); 202, progress in GET /api/admin/projections',
    tag: 'Operations',
    scope: 'admin:write',
    callers: OPERATOR,
    answer: 'started',
  },
  {
    method: 'put',
    path: `${REFERENCE}/:kind/:id`,
    summary: `Upsert one reference record by its version (201 created, 200 updated or the same content; 409 an older version, or the same version with other content). ${KINDS_TEXT}`,
    tag: 'Reference data',
    scope: 'reference:write',
    callers: OPERATOR,
    body: referenceRecordSchema,
    answer: 200,
  },
  {
    method: 'post',
    path: `${REFERENCE}/:kind`,
    summary:
      'A batch of records of one kind (NDJSON, at most REFERENCE_BATCH_MAX_LINES lines), all or nothing; 422 names the failing line and field; older versions are skipped and counted',
    tag: 'Reference data',
    scope: 'reference:write',
    callers: OPERATOR,
    ndjson: true,
    answer: 200,
  },
  {
    method: 'post',
    path: REFERENCE,
    summary: 'A batch of records of any kind (NDJSON, one {"kind", "record"} a line, as `cli reference import` reads), all or nothing',
    tag: 'Reference data',
    scope: 'reference:write',
    callers: OPERATOR,
    ndjson: true,
    answer: 200,
  },
  {
    method: 'get',
    path: `${REFERENCE}/:kind/:id`,
    summary: 'A stored reference record, its version and when it changed here',
    tag: 'Reference data',
    scope: 'reference:read',
    callers: OPERATOR,
    answer: 200,
  },
  {
    method: 'get',
    path: '/api/audit/reference/:kind/:id',
    summary: 'A reference record as it stood at `as_of` (from the change log)',
    tag: 'Audit',
    scope: 'audit:read_all',
    callers: AUDITOR,
    query: z.object({ as_of: z.iso.datetime({ offset: true }) }),
    answer: 200,
  },
  {
    method: 'get',
    path: '/api/admin/projections/poison',
    summary: 'Dead letters: the events a projection could not apply (halted, parked, retrying, skipped, resolved)',
    tag: 'Operations',
    scope: 'admin:read',
    callers: OPERATOR,
    query: poisonListQuerySchema,
    answer: 'list',
  },
  {
    method: 'post',
    path: '/api/admin/projections/poison/:id/retry',
    summary: 'Apply a dead-lettered event again: a halted projection tries it at once (409 unless halted or parked)',
    tag: 'Operations',
    scope: 'admin:write',
    callers: OPERATOR,
    answer: 200,
  },
  {
    method: 'post',
    path: '/api/admin/projections/poison/:id/skip',
    summary: 'Skip a dead-lettered event: never applied, a halted projection moves past it (409 when skipped or resolved)',
    tag: 'Operations',
    scope: 'admin:write',
    callers: OPERATOR,
    answer: 200,
  },
  {
    method: 'get',
    path: '/api/jobs/:id',
    summary: "A job's state (200 pending, 303 processed, the error's code when failed)",
    tag: 'Jobs',
    scope: null,
    callers: JOB_READER,
    answer: 'job',
  },
  service('/', 'Index: name, version, links', 'application/json'),
  service('/health/live', 'Liveness: the process serves', 'application/json'),
  service(
    '/health/ready',
    'Readiness: 200 while the stores answer, `degraded` listing parts that work less than fully (a halted projection, parked events); 503 names the failing part',
    'application/json',
  ),
  { ...service('/metrics', 'Prometheus metrics (METRICS_SCOPE, or no token with METRICS_PUBLIC=true)', 'text/plain'), scope: 'metrics' },
  service('/api/openapi.json', 'This document', 'application/json'),
  service('/docs', 'API documentation (Swagger UI)', 'text/html'),
];

/** The caller class of the operation `method path` (express path), or undefined when the table has none. */
export function callersOf(method: string, path: string): Callers | undefined {
  const wanted = method.toLowerCase() === 'head' ? 'get' : method.toLowerCase();
  return OPERATIONS.find((op) => op.method === wanted && op.path === path)?.callers;
}

/** What a declaration means for a caller, in the operation's description (docs/caller-classes.md). */
function callersText(callers: Callers): string {
  const refused = '403 "User is not an active employee of the legal entity"';
  switch (callers.class) {
    case 'public':
      return 'Caller class: public.';
    case 'operator':
      return "Caller class: operator (the operator's service accounts; the scope decides).";
    case 'auditor':
      return "Caller class: auditor (`audit:read_all`; a user the reference data knows must be an active employee of the token's legal entity).";
    case 'employee':
      if (callers.employment === 'in_job')
        return `Caller class: employee (checked in the job, after the seed's legal-entity checks: the job fails with ${refused}).`;
      if (callers.employment === 'at_once_but_own_job')
        return `Caller class: employee (else ${refused}; the user who started the job may read it while pending or failed).`;
      return `Caller class: employee (the token's user an active employee of its legal entity, else ${refused})${callers.orAuditor ? '; with `audit:read_all`: auditor' : ''}.`;
  }
}

/** express `/a/:id/b` → OpenAPI `/a/{id}/b`. */
export const openApiPath = (path: string) => path.replace(/:(\w+)/g, '{$1}');

type JsonSchema = Record<string, unknown>;
const jsonSchemaOf = (schema: Schema): JsonSchema => {
  // Input side: what a client sends (defaults optional, coercions from the query string's text).
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return rest;
};

const ref = (name: string) => ({ $ref: `#/components/responses/${name}` });

function queryParameters(schema: Schema) {
  const json = jsonSchemaOf(schema) as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({
    name,
    in: 'query',
    required: json.required?.includes(name) ?? false,
    schema: property,
  }));
}

function operationObject(op: Operation, metricsScope: string) {
  const scopes = op.scope === 'metrics' ? [metricsScope] : typeof op.scope === 'string' ? (op.scope === 'public' ? [] : [op.scope]) : (op.scope ?? []);
  const needsToken = op.scope !== 'public';
  const pathParams = [...op.path.matchAll(/:(\w+)/g)].map(([, name]) => ({ name: name!, in: 'path', required: true, schema: { type: 'string' } }));
  const scopeText =
    op.scope === 'public'
      ? 'No token.'
      : op.scope === null
        ? 'Any valid access token (the job must be of its legal entity).'
        : `Scope: ${scopes.map((s) => `\`${s}\``).join(' or ')}.`;
  const responses: Record<string, unknown> = {};
  switch (op.answer) {
    case 202:
      responses['202'] = ref('Accepted');
      break;
    case 'list':
      responses['200'] = ref('List');
      break;
    case 'started':
      responses['202'] = { ...ref('Object'), description: 'Started in the background (no job: follow it in GET /api/admin/projections)' };
      break;
    case 'job':
      responses['200'] = ref('JobPending');
      // No Location header, on purpose: a fetch-based client (browsers, Node's fetch) follows a 303 with a
      // Location silently and hands its caller the entity as a 200, losing the job's outcome; the official
      // ЕСОЗ clients read the 303's body. The server sends none, and the document declares none.
      responses['303'] = {
        description: 'Processed: `data.links` point to the entity (no `Location` header: read the body, as the official ЕСОЗ clients do)',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Envelope' } } },
      };
      break;
    case 'raw':
      responses['200'] = {
        description: 'OK',
        content: { [op.rawContent ?? 'application/json']: { schema: op.rawContent === 'application/json' ? { type: 'object' } : { type: 'string' } } },
      };
      break;
    default:
      responses[String(op.answer)] = op.answer === 201 ? ref('Created') : ref('Object');
  }
  if (op.path === '/health/ready')
    responses['503'] = { description: 'Not ready: `failing` names the parts', content: { 'application/json': { schema: { type: 'object' } } } };
  if (needsToken) {
    responses['401'] = ref('Unauthorized');
    if (scopes.length > 0) responses['403'] = ref('Error');
  }
  if (op.answer !== 'raw') {
    if (op.body || op.query) responses['422'] = ref('Error');
    if (op.body || op.ndjson) Object.assign(responses, { '400': ref('Error'), '413': ref('Error'), '415': ref('Error') });
    if (op.ndjson || op.method === 'put') responses['422'] = ref('Error');
    if (op.method === 'put') Object.assign(responses, { '201': ref('Object'), '409': ref('Error') });
    if (op.answer === 'job' || op.answer === 200 || op.answer === 202) responses['404'] = ref('Error');
    if (op.path.startsWith('/api/admin/projections/poison/')) responses['409'] = ref('Error');
    responses['503'] = ref('Error');
  }
  return {
    operationId: `${op.method}${op.path.replace(/[^A-Za-z0-9]+(\w)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase()) || 'Index'}`,
    summary: op.summary,
    description: `${scopeText} ${callersText(op.callers)}${op.signed ? ' `signed_data`: a compact JWS whose payload is the dispense as GET returns it, with the new status.' : ''}`,
    tags: [op.tag],
    'x-caller-classes': classesOf(op.callers),
    security: needsToken ? [{ bearerAuth: scopes }] : [],
    ...(needsToken && scopes.length > 0 ? { 'x-scopes': scopes } : {}),
    parameters: [
      ...pathParams,
      ...(op.query ? queryParameters(op.query) : []),
      ...(op.method === 'get' || op.answer === 'raw' ? [] : [{ $ref: '#/components/parameters/IdempotencyKey' }]),
    ],
    ...(op.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchemaOf(op.body) } } } } : {}),
    ...(op.ndjson ? { requestBody: { required: true, content: { 'application/x-ndjson': { schema: { type: 'string' } } } } } : {}),
    responses,
  };
}

const meta = {
  type: 'object',
  required: ['code', 'url', 'type', 'request_id'],
  properties: {
    code: { type: 'integer' },
    url: { type: 'string', format: 'uri' },
    type: { type: 'string', enum: ['object', 'list'] },
    request_id: { type: 'string' },
    idempotency_key: { type: 'string' },
  },
};

/** The whole document; `metricsScope` is METRICS_SCOPE (documented as /metrics' scope). */
export function buildOpenApiDocument({ serverUrl, metricsScope = 'admin:read' }: { serverUrl?: string; metricsScope?: string } = {}) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) (paths[openApiPath(op.path)] ??= {})[op.method] = operationObject(op, metricsScope);
  const envelope = (data: unknown, extra: Record<string, unknown> = {}) => ({
    type: 'object',
    required: ['meta', 'data'],
    properties: { meta: { $ref: '#/components/schemas/Meta' }, data, ...extra },
  });
  return {
    openapi: '3.1.0',
    info: { title: 'ЕСОЗ device-dispense and licence registry', version: packageInfo.version, description: packageInfo.description },
    ...(serverUrl ? { servers: [{ url: serverUrl }] } : {}),
    tags: ['Device dispenses', 'Licences', 'Audit', 'Jobs', 'Reference data', 'Operations', 'Service'].map((name) => ({ name })),
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'An access token whose `scope` claim lists the scopes; `sub` = user, `client_id` = legal entity.',
        },
      },
      parameters: {
        IdempotencyKey: {
          name: 'X-Idempotency-Key',
          in: 'header',
          required: false,
          description: 'Repeats with the same key replay the first answer.',
          schema: { type: 'string', maxLength: 200 },
        },
      },
      schemas: {
        Meta: meta,
        Envelope: envelope({}),
        Paging: {
          type: 'object',
          required: ['page', 'page_size', 'total_entries', 'total_pages'],
          properties: { page: { type: 'integer' }, page_size: { type: 'integer' }, total_entries: { type: 'integer' }, total_pages: { type: 'integer' } },
        },
        Job: {
          type: 'object',
          required: ['status', 'eta', 'links'],
          properties: {
            status: { type: 'string', enum: ['pending', 'processed', 'failed'] },
            eta: { type: 'string', format: 'date-time' },
            links: {
              type: 'array',
              items: { type: 'object', required: ['entity', 'href'], properties: { entity: { type: 'string' }, href: { type: 'string' } } },
            },
          },
        },
        Error: {
          type: 'object',
          required: ['meta', 'error'],
          properties: {
            meta: { $ref: '#/components/schemas/Meta' },
            error: {
              type: 'object',
              required: ['type', 'message'],
              properties: {
                type: { type: 'string', examples: ['validation_failed', 'access_denied', 'not_found'] },
                message: { type: 'string' },
                invalid: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      entry: { type: 'string' },
                      entry_type: { type: 'string' },
                      rules: {
                        type: 'array',
                        items: { type: 'object', properties: { rule: { type: 'string' }, description: { type: 'string' }, params: { type: 'array' } } },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      },
      responses: {
        Accepted: {
          description: 'Accepted: processed by a job; poll `data.links[0].href`',
          content: { 'application/json': { schema: envelope({ $ref: '#/components/schemas/Job' }) } },
        },
        JobPending: {
          description: 'Still pending, or the job (failed jobs answer with their error status)',
          content: { 'application/json': { schema: envelope({ $ref: '#/components/schemas/Job' }) } },
        },
        Object: { description: 'OK (ЕСОЗ envelope)', content: { 'application/json': { schema: envelope({ type: 'object' }) } } },
        Created: {
          description: 'Created (ЕСОЗ envelope with the record)',
          headers: { Location: { description: 'The created record, a relative reference (`/api/licenses/{id}`)', schema: { type: 'string' } } },
          content: { 'application/json': { schema: envelope({ type: 'object' }) } },
        },
        List: {
          description: 'OK (ЕСОЗ envelope with paging)',
          content: {
            'application/json': { schema: envelope({ type: 'array', items: { type: 'object' } }, { paging: { $ref: '#/components/schemas/Paging' } }) },
          },
        },
        Error: { description: 'ЕСОЗ error JSON', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        Unauthorized: {
          description: 'No valid access token (ЕСОЗ error JSON)',
          headers: { 'WWW-Authenticate': { description: '`Bearer`, or `Bearer error="invalid_token"` when a token was sent', schema: { type: 'string' } } },
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
    },
  };
}
