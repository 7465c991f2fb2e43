/** Every endpoint, wired to its command or query. */
import type { Request, Response, Router } from 'express';
import { createDeviceDispenseRequestSchema } from '../commands/createDeviceDispense.js';
import { createLicense, createLicenseRequestSchema } from '../commands/createLicense.js';
import type { Caller } from '../commands/shared/commandContext.js';
import { updateLicense, updateLicenseRequestSchema } from '../commands/updateLicense.js';
import { getLicense, listLicenses, listLicensesQuerySchema } from '../queries/licenses.js';
import { asOfQuerySchema, deviceDispenseAsOf, history, historyQuerySchema, licenseAsOf, streamEvents, streamEventsQuerySchema } from '../queries/audit.js';
import { projectionsHealth } from '../queries/projectionsHealth.js';
import { actOnPoisonEvent, listPoisonEvents, poisonListQuerySchema } from '../queries/poisonEvents.js';
import type { DeadLetters } from '../projections/deadLetters.js';
import { streamProof } from '../queries/auditProof.js';
import type { Database } from '../database/database.js';
import { auditAccessOf } from '../queries/auditAccess.js';
import type { CommandDeps } from '../commands/shared/commandContext.js';
import { signedRequestSchema } from '../commands/shared/deviceDispenses.js';
import type { EventStore, JsonObject } from '../eventStore/eventStore.js';
import { DEVICE_DISPENSE_JOBS } from '../jobs/deviceDispenseJobs.js';
import type { Job, JobStore, NewJob } from '../jobs/jobStore.js';
import type { JobWatch } from '../jobs/jobWatch.js';
import type { ProjectionRunner } from '../projections/projectionRunner.js';
import type { Projection } from '../projections/projection.js';
import type { Rebuilds } from '../projections/rebuilds.js';
import { ADMIN_WRITE, AUDIT_READ_ALL } from '../auth/scopes.js';
import { notFound } from '../domain/shared/esozError.js';
import { getDeviceDispense, searchDeviceDispenses, searchDeviceDispensesQuerySchema } from '../queries/deviceDispenses.js';
import type { DeviceDispenseStore } from '../readModels/deviceDispenseStore.js';
import type { LicenseStore } from '../readModels/licenseStore.js';
import type { ReferenceService } from '../referenceData/referenceService.js';
import { registerReferenceRoutes } from './referenceRoutes.js';
import { DEVICE_DISPENSES_ROUTE as DISPENSES, JOB_ROUTE, LICENSES_ROUTE, jobPath, licensePath } from '../shared/resourcePaths.js';
import { pathParam, principalOf, requestIdOf, type Authorize, type FastLane } from './app.js';
import { paging, sendData } from './envelope.js';
import { answerJobGet, jobAnswerHeaders } from './jobs.js';
import { parseOrThrow } from './validation.js';

/** What the routes read: the ports of the commands and queries they call (the composition root passes them). */
export type RouteContext = {
  eventStore: EventStore;
  /** The anchors' heads live beside the event store (the proof route reads them). */
  database: Database;
  deviceDispenses: DeviceDispenseStore;
  licenses: LicenseStore;
  jobs: JobStore;
  /** Jobs this process finished lately and who waits for which (null: read the store every time). */
  jobWatch: JobWatch | null;
  reference: ReferenceService;
  commandDeps: CommandDeps;
  projections: Record<'deviceDispenses' | 'licenses' | 'statusChangeEvents', ProjectionRunner>;
  /** The projections themselves (what a server-side rebuild builds beside the live ones) and their rebuilds. */
  projectionDefinitions: Projection[];
  rebuilds: Rebuilds;
  /** The events projections could not apply (dead letters), and the operator's actions on them. */
  deadLetters: DeadLetters;
};
/** `accept` runs a job at once where it can finish within the request, else queues it. */
export type RouteDeps = { context: RouteContext; accept: (job: NewJob) => Promise<Job> };

/** The audit reads' scopes: audit:read (own legal entity) or audit:read_all (every one). */
const AUDIT_SCOPES = ['audit:read', AUDIT_READ_ALL] as const;

/** The 202 of an async method: always "pending" (the contract), its outcome is the job's. */
const acceptedData = (job: Job) => ({ status: 'pending', eta: job.eta, links: [{ entity: 'job', href: jobPath(job.id) }] });

/** A path parameter the lanes take as is: nothing to decode. */
const PLAIN_PARAM = '([A-Za-z0-9_-]{1,64})';

/**
 * The plain requests answered in front of Express (app.ts answerFirst), as their routes below answer
 * them: the job GET that follows every command, the GET of the dispense it links to (an MIS shows what
 * it changed), Create (a small JSON body) and Stop (no body).
 */
export function fastLanes({ context, accept: acceptJob }: RouteDeps): FastLane[] {
  return [
    {
      method: 'GET',
      path: /^\/api\/jobs\/([0-9a-fA-F-]{1,36})$/,
      route: JOB_ROUTE,
      scope: null,
      async answer(principal, [id], { prefer }) {
        const answer = await answerJobGet(context.jobs, context.jobWatch, id!, principal.legalEntityId, prefer);
        return { code: answer.code, data: answer.data, headers: jobAnswerHeaders(answer) };
      },
    },
    {
      method: 'GET',
      path: new RegExp(`^/api/patients/${PLAIN_PARAM}/device_dispenses/${PLAIN_PARAM}$`),
      route: `${DISPENSES}/:id`,
      scope: 'device_dispense:read',
      async answer(principal, [patientId, id]) {
        // The employment rule (caller class employee) was checked in front of this, as for every lane.
        return { code: 200, data: await getDeviceDispense(context.deviceDispenses, principal.legalEntityId, patientId!, id!) };
      },
    },
    {
      method: 'POST',
      path: new RegExp(`^/api/patients/${PLAIN_PARAM}/device_dispenses$`),
      route: DISPENSES,
      scope: 'device_dispense:write',
      async answer({ legalEntityId, userId }, [patientId], { requestId, body }) {
        const parsed = parseOrThrow(createDeviceDispenseRequestSchema, body, 'json_data_property');
        const request = { patient_id: patientId!, body: parsed as unknown as JsonObject };
        return { code: 202, data: acceptedData(await acceptJob({ kind: DEVICE_DISPENSE_JOBS.create, legalEntityId, userId, request, requestId })) };
      },
    },
    {
      method: 'PATCH',
      path: new RegExp(`^/api/patients/${PLAIN_PARAM}/device_dispenses/${PLAIN_PARAM}/actions/stop$`),
      route: `${DISPENSES}/:id/actions/stop`,
      scope: 'device_dispense:stop',
      async answer({ legalEntityId, userId }, [patientId, id], { requestId }) {
        const request = { patient_id: patientId!, device_dispense_id: id! };
        return { code: 202, data: acceptedData(await acceptJob({ kind: DEVICE_DISPENSE_JOBS.stop, legalEntityId, userId, request, requestId })) };
      },
    },
  ];
}

export function registerRoutes(router: Router, authorize: Authorize, { context, accept: acceptJob }: RouteDeps): void {
  /**
   * An async method: the request passed token, scope and schema; the rest runs in a job (202). The 202
   * always says "pending" (the contract's answer), even when the job already finished within the
   * request: its outcome is read from the job, as from any job.
   */
  const accept = async (req: Request, res: Response, kind: string, request: JsonObject) => {
    const { legalEntityId, userId } = principalOf(res);
    const job = await acceptJob({ kind, legalEntityId, userId, request, requestId: requestIdOf(res) });
    sendData(req, res, 202, acceptedData(job));
  };
  const target = (req: Request) => ({ patient_id: pathParam(req, 'patient_id'), device_dispense_id: pathParam(req, 'id') });

  router.post(DISPENSES, authorize('device_dispense:write'), async (req, res) => {
    const body = parseOrThrow(createDeviceDispenseRequestSchema, req.body, 'json_data_property');
    await accept(req, res, DEVICE_DISPENSE_JOBS.create, { patient_id: pathParam(req, 'patient_id'), body: body as unknown as JsonObject });
  });
  router.patch(`${DISPENSES}/:id/actions/complete`, authorize('device_dispense:complete'), async (req, res) => {
    const body = parseOrThrow(signedRequestSchema, req.body, 'json_data_property');
    await accept(req, res, DEVICE_DISPENSE_JOBS.complete, { ...target(req), body });
  });
  router.patch(`${DISPENSES}/:id/actions/stop`, authorize('device_dispense:stop'), async (req, res) => {
    await accept(req, res, DEVICE_DISPENSE_JOBS.stop, target(req));
  });
  router.patch(`${DISPENSES}/:id/actions/mark_in_error`, authorize('device_dispense:mark_in_error'), async (req, res) => {
    const body = parseOrThrow(signedRequestSchema, req.body, 'json_data_property');
    await accept(req, res, DEVICE_DISPENSE_JOBS.markInError, { ...target(req), body });
  });

  // Reads: the employment rule (caller class employee, src/http/callerClasses.ts) runs in authorize,
  // right after the scope: 403 'User is not an active employee of the legal entity'.
  router.get(`${DISPENSES}/:id`, authorize('device_dispense:read'), async (req, res) => {
    const { patient_id, device_dispense_id } = target(req);
    const reader = principalOf(res);
    sendData(req, res, 200, await getDeviceDispense(context.deviceDispenses, reader.legalEntityId, patient_id, device_dispense_id));
  });
  router.get(DISPENSES, authorize('device_dispense:read'), async (req, res) => {
    const reader = principalOf(res);
    const query = parseOrThrow(searchDeviceDispensesQuerySchema, req.query, 'query_parameter');
    const found = await searchDeviceDispenses(context.deviceDispenses, reader.legalEntityId, query, pathParam(req, 'patient_id'));
    sendData(req, res, 200, found.items, paging(query.page, query.page_size, found.total));
  });
  router.get('/api/device_dispenses', authorize('device_dispense:read'), async (req, res) => {
    const reader = principalOf(res);
    const query = parseOrThrow(searchDeviceDispensesQuerySchema, req.query, 'query_parameter');
    const found = await searchDeviceDispenses(context.deviceDispenses, reader.legalEntityId, query);
    sendData(req, res, 200, found.items, paging(query.page, query.page_size, found.total));
  });

  // Licences: sync methods; the answer (and any GET after it) shows the read model with the change.
  const syncCaller = (res: Response): Caller => {
    const principal = principalOf(res);
    const requestId = requestIdOf(res);
    return { userId: principal.userId, legalEntityId: principal.legalEntityId, correlationId: requestId, causationId: requestId };
  };
  const READ_YOUR_WRITES_MS = 30_000;
  router.post(LICENSES_ROUTE, authorize('license:write'), async (req, res) => {
    const body = parseOrThrow(createLicenseRequestSchema, req.body, 'json_data_property');
    const caller = syncCaller(res);
    const { id, position } = await createLicense(context.commandDeps, caller, body);
    if (position) await context.projections.licenses.waitFor(position, READ_YOUR_WRITES_MS);
    const created = await getLicense(context.licenses, caller.legalEntityId, id);
    res.set('Location', licensePath(id)); // a relative reference, as the API's links are
    sendData(req, res, 201, created);
  });
  router.patch(`${LICENSES_ROUTE}/:id`, authorize('license:write'), async (req, res) => {
    const body = parseOrThrow(updateLicenseRequestSchema, req.body, 'json_data_property');
    const caller = syncCaller(res);
    const { position } = await updateLicense(context.commandDeps, context.licenses, caller, pathParam(req, 'id'), body);
    if (position) await context.projections.licenses.waitFor(position, READ_YOUR_WRITES_MS);
    sendData(req, res, 200, await getLicense(context.licenses, caller.legalEntityId, pathParam(req, 'id')));
  });
  router.get(LICENSES_ROUTE, authorize('license:read'), async (req, res) => {
    const query = parseOrThrow(listLicensesQuerySchema, req.query, 'query_parameter');
    const found = await listLicenses(context.licenses, principalOf(res).legalEntityId, query);
    sendData(req, res, 200, found.items, paging(query.page, query.page_size, found.total));
  });
  router.get(`${LICENSES_ROUTE}/:id`, authorize('license:read'), async (req, res) => {
    sendData(req, res, 200, await getLicense(context.licenses, principalOf(res).legalEntityId, pathParam(req, 'id')));
  });

  // Audit: the recorded history itself, and states as of a moment. audit:read sees the token's legal
  // entity only, audit:read_all everything (either scope will do; without both, 403 naming audit:read).
  // With audit:read the caller is an employee, with audit:read_all an auditor (src/http/callerClasses.ts).
  const audit = (res: Response) => auditAccessOf(principalOf(res));
  router.get('/api/audit/streams/:stream/events', authorize(AUDIT_SCOPES), async (req, res) => {
    const access = audit(res);
    const query = parseOrThrow(streamEventsQuerySchema, req.query, 'query_parameter');
    const { events, total } = await streamEvents(context.eventStore, access, pathParam(req, 'stream'), query);
    sendData(req, res, 200, events, paging(query.page, query.page_size, total));
  });
  router.get('/api/audit/streams/:stream/proof', authorize(AUDIT_SCOPES), async (req, res) => {
    const access = audit(res);
    sendData(req, res, 200, await streamProof(context.eventStore, context.database, access, pathParam(req, 'stream')));
  });
  router.get('/api/audit/events', authorize(AUDIT_SCOPES), async (req, res) => {
    const access = audit(res);
    sendData(req, res, 200, await history(context.eventStore, access, parseOrThrow(historyQuerySchema, req.query, 'query_parameter')));
  });
  router.get('/api/audit/device_dispenses/:id', authorize(AUDIT_SCOPES), async (req, res) => {
    const access = audit(res);
    const { as_of } = parseOrThrow(asOfQuerySchema, req.query, 'query_parameter');
    sendData(req, res, 200, await deviceDispenseAsOf(context.eventStore, access, pathParam(req, 'id'), as_of));
  });
  router.get('/api/audit/licenses/:id', authorize(AUDIT_SCOPES), async (req, res) => {
    const access = audit(res);
    const { as_of } = parseOrThrow(asOfQuerySchema, req.query, 'query_parameter');
    sendData(req, res, 200, await licenseAsOf(context.eventStore, context.licenses, access, pathParam(req, 'id'), as_of));
  });
  router.get('/api/admin/projections', authorize('admin:read'), async (req, res) => {
    const health = await projectionsHealth(context.eventStore, Object.values(context.projections));
    sendData(
      req,
      res,
      200,
      health.map((entry) => ({ ...entry, rebuild: context.rebuilds.stateOf(entry.name) })),
    );
  });
  router.post('/api/admin/projections/:name/rebuild', authorize(ADMIN_WRITE), async (req, res) => {
    const name = pathParam(req, 'name');
    const projections = context.projectionDefinitions.filter((p) => name === 'all' || p.name === name);
    if (projections.length === 0) throw notFound(`Projection ${name} not found`);
    const state = context.rebuilds.start(projections);
    sendData(req, res, 202, { projections: projections.map((p) => p.name), ...state });
  });

  router.get('/api/admin/projections/poison', authorize('admin:read'), async (req, res) => {
    const letters = await listPoisonEvents(context.deadLetters, parseOrThrow(poisonListQuerySchema, req.query, 'query_parameter'));
    sendData(req, res, 200, letters, paging(1, Math.max(letters.length, 1), letters.length));
  });
  for (const action of ['retry', 'skip'] as const)
    router.post(`/api/admin/projections/poison/:id/${action}`, authorize(ADMIN_WRITE), async (req, res) => {
      sendData(req, res, 200, await actOnPoisonEvent(context.deadLetters, pathParam(req, 'id'), action));
    });

  // `Prefer: wait=N` (RFC 7240): a pending job is answered when it ends, within N seconds (bounded);
  // a pending answer says when to ask again.
  // (A plain job GET is answered in front of Express the same way: fastLanes above.)
  router.get(JOB_ROUTE, authorize(null), async (req, res) => {
    const answer = await answerJobGet(context.jobs, context.jobWatch, pathParam(req, 'id'), principalOf(res).legalEntityId, req.get('prefer'));
    for (const [name, value] of jobAnswerHeaders(answer)) {
      if (name === 'vary') res.vary(value);
      else res.set(name, value);
    }
    sendData(req, res, answer.code, answer.data);
  });

  registerReferenceRoutes(router, authorize, context.reference);
}
