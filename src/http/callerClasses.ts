/**
 * Who may call each operation (docs/caller-classes.md). Every operation of the route table
 * (src/http/openapi.ts OPERATIONS) declares its callers there, and this is the one place that
 * enforces them: `authorize` (src/http/app.ts) and the fast lanes in front of Express call
 * {@link enforceCallers} right after the token and scope checks.
 *
 * - `employee`: an MIS user acting for the token's legal entity; the employment rule
 *   (src/commands/shared/employment.ts) with its 403 "User is not an active employee of the legal entity".
 * - `auditor`: `audit:read_all`, the national auditor (rule below).
 * - `operator`: the operator's service accounts (admin:* and reference:* scopes): the scope is the class.
 * - `public`: no token, or (metrics) only the configured METRICS_SCOPE.
 */
import type { Principal } from '../auth/accessTokens.js';
import { AUDIT_READ_ALL } from '../auth/scopes.js';
import { isActiveEmployee, NOT_AN_ACTIVE_EMPLOYEE } from '../commands/shared/employment.js';
import { forbidden } from '../domain/shared/esozError.js';
import type { JobStore } from '../jobs/jobStore.js';
import type { ReferenceService } from '../referenceData/referenceService.js';

export const CALLER_CLASSES = ['employee', 'auditor', 'operator', 'public'] as const;
export type CallerClass = (typeof CALLER_CLASSES)[number];

/**
 * An operation's callers. `employment` (employee operations) says where the employment rule runs:
 * - `at_once`: right after the scope check, here;
 * - `in_job`: the async device-dispense methods, whose commands check it inside the job in the seed's
 *   order (after the seed's legal-entity checks), so the request is not checked here (the job fails);
 * - `at_once_but_own_job`: the job GET: as `at_once`, except that the user who started a job may read
 *   it while it is pending or after it failed — that is how a refused async request learns why (the
 *   `in_job` methods accept any caller with the scope); a processed job's links are for employees only.
 * `orAuditor`: an `audit:read_all` token is an auditor instead (the audit reads: `audit:read` is the
 * employee's own-legal-entity audit).
 */
export type Callers =
  | { class: 'public' }
  | { class: 'operator' }
  | { class: 'auditor' }
  | { class: 'employee'; employment: 'at_once' | 'in_job' | 'at_once_but_own_job'; orAuditor?: true };

export const PUBLIC: Callers = { class: 'public' };
export const OPERATOR: Callers = { class: 'operator' };
export const AUDITOR: Callers = { class: 'auditor' };
export const EMPLOYEE: Callers = { class: 'employee', employment: 'at_once' };
export const EMPLOYEE_IN_JOB: Callers = { class: 'employee', employment: 'in_job' };
export const JOB_READER: Callers = { class: 'employee', employment: 'at_once_but_own_job' };
export const EMPLOYEE_OR_AUDITOR: Callers = { class: 'employee', employment: 'at_once', orAuditor: true };

/** The classes a declaration admits (the OpenAPI document lists them as `x-caller-classes`). */
export const classesOf = (callers: Callers): CallerClass[] => (callers.class === 'employee' && callers.orAuditor ? ['employee', 'auditor'] : [callers.class]);

/** What enforcing needs to read: the reference data (employment) and the jobs (the job GET's exception). */
export type CallerFacts = {
  reference: Pick<ReferenceService, 'view'>;
  jobs: Pick<JobStore, 'get'>;
};

const notEmployed = () => forbidden(NOT_AN_ACTIVE_EMPLOYEE);

/** Whether `principal` may read the job `id` as the user who started it (pending or failed, its legal entity). */
async function ownUnfinishedJob(jobs: CallerFacts['jobs'], principal: Principal, id: string | undefined): Promise<boolean> {
  if (id === undefined) return false;
  const job = await jobs.get(id);
  return job !== null && job.userId === principal.userId && job.legalEntityId === principal.legalEntityId && job.status !== 'processed';
}

/**
 * The auditor rule: `audit:read_all` is the role, checked by scope. The national auditor is usually
 * not in the MIS reference data at all (a user the registry does not know): then the scope alone
 * decides. Where the reference data knows the user (a `users` record exists), the user must be an
 * active employee of the token's legal entity (the auditing body), as any known user acting for a
 * legal entity must: a dismissed or another legal entity's user with a mis-issued audit:read_all
 * token is refused with the employment 403.
 */
async function checkAuditor(facts: CallerFacts, principal: Principal): Promise<void> {
  const view = await facts.reference.view({ users: [principal.userId] });
  if (view.user(principal.userId) !== undefined && !isActiveEmployee(view, principal)) throw notEmployed();
}

/** Throws the class's refusal unless `principal` (whose token and scope passed) is among `callers`. */
export async function enforceCallers(callers: Callers, principal: Principal, params: Readonly<Record<string, string>>, facts: CallerFacts): Promise<void> {
  switch (callers.class) {
    case 'public':
    case 'operator':
      return; // the scope (METRICS_SCOPE, admin:*, reference:*) is the whole rule: service accounts, not MIS users
    case 'auditor':
      return checkAuditor(facts, principal);
    case 'employee': {
      if (callers.orAuditor && principal.scopes.has(AUDIT_READ_ALL)) return checkAuditor(facts, principal);
      if (callers.employment === 'in_job') return;
      if (isActiveEmployee(await facts.reference.view({ users: [principal.userId] }), principal)) return;
      if (callers.employment === 'at_once_but_own_job' && (await ownUnfinishedJob(facts.jobs, principal, params.id))) return;
      throw notEmployed();
    }
  }
}
