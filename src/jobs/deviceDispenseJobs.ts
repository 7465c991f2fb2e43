/**
 * The async device-dispense methods as jobs: run the command, then finish only once the
 * `device_dispenses` read model shows its events, so a GET after `processed` sees the change.
 */
import { z } from 'zod';
import { completeDeviceDispense } from '../commands/completeDeviceDispense.js';
import { createDeviceDispense, createDeviceDispenseRequestSchema } from '../commands/createDeviceDispense.js';
import { markDeviceDispenseInError } from '../commands/markDeviceDispenseInError.js';
import type { Caller, CommandDeps } from '../commands/shared/commandContext.js';
import { signedRequestSchema } from '../commands/shared/deviceDispenses.js';
import type { CommandResult } from '../commands/shared/result.js';
import { stopDeviceDispense } from '../commands/stopDeviceDispense.js';
import type { ProjectionRunner } from '../projections/projectionRunner.js';
import { deviceDispensePath } from '../shared/resourcePaths.js';
import type { Job } from './jobStore.js';
import type { JobHandlers, JobRun } from './jobWorker.js';

export const DEVICE_DISPENSE_JOBS = {
  create: 'device_dispense.create',
  complete: 'device_dispense.complete',
  stop: 'device_dispense.stop',
  markInError: 'device_dispense.mark_in_error',
} as const;

// The job payloads as the routes wrote them, parsed once here into each command's input.
const actionPayload = z.object({ patient_id: z.string(), device_dispense_id: z.string() });
const signedActionPayload = actionPayload.extend({ body: signedRequestSchema });
const createPayload = z.object({ patient_id: z.string(), body: createDeviceDispenseRequestSchema });

const callerOf = (job: Job): Caller => ({ userId: job.userId, legalEntityId: job.legalEntityId, correlationId: job.requestId, causationId: job.id });

export function deviceDispenseJobHandlers(deps: CommandDeps, readModel: ProjectionRunner, { readModelTimeoutMs = 30_000 } = {}): JobHandlers {
  /** Runs the command; finished once the read model shows it (at once when it committed with the events). */
  const run = async (jobRun: JobRun, patientId: string, id: string, command: (deps: CommandDeps) => Promise<CommandResult>) => {
    const links = [{ entity: 'device_dispense', href: deviceDispensePath(patientId, id) }];
    const commit = jobRun.commit(links);
    const result = await command(commit ? { ...deps, commit } : deps);
    if (!commit && result.position) await readModel.waitFor(result.position, readModelTimeoutMs);
    return { links };
  };
  return {
    [DEVICE_DISPENSE_JOBS.create]: async (job, jobRun) => {
      const input = createPayload.parse(job.request);
      return run(jobRun, input.patient_id, input.body.id, (d) => createDeviceDispense(d, callerOf(job), input));
    },
    [DEVICE_DISPENSE_JOBS.complete]: async (job, jobRun) => {
      const input = signedActionPayload.parse(job.request);
      return run(jobRun, input.patient_id, input.device_dispense_id, (d) => completeDeviceDispense(d, callerOf(job), input));
    },
    [DEVICE_DISPENSE_JOBS.stop]: async (job, jobRun) => {
      const input = actionPayload.parse(job.request);
      return run(jobRun, input.patient_id, input.device_dispense_id, (d) => stopDeviceDispense(d, callerOf(job), input));
    },
    [DEVICE_DISPENSE_JOBS.markInError]: async (job, jobRun) => {
      const input = signedActionPayload.parse(job.request);
      return run(jobRun, input.patient_id, input.device_dispense_id, (d) => markDeviceDispenseInError(d, callerOf(job), input));
    },
  };
}
