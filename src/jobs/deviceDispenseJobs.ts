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
import type { JobHandlers } from './jobWorker.js';

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
  const finish = async (result: CommandResult, patientId: string, id: string) => {
    if (result.position) await readModel.waitFor(result.position, readModelTimeoutMs);
    return { links: [{ entity: 'device_dispense', href: deviceDispensePath(patientId, id) }] };
  };
  return {
    [DEVICE_DISPENSE_JOBS.create]: async (job) => {
      const input = createPayload.parse(job.request);
      const result = await createDeviceDispense(deps, callerOf(job), input);
      return finish(result, input.patient_id, input.body.id);
    },
    [DEVICE_DISPENSE_JOBS.complete]: async (job) => {
      const input = signedActionPayload.parse(job.request);
      return finish(await completeDeviceDispense(deps, callerOf(job), input), input.patient_id, input.device_dispense_id);
    },
    [DEVICE_DISPENSE_JOBS.stop]: async (job) => {
      const input = actionPayload.parse(job.request);
      return finish(await stopDeviceDispense(deps, callerOf(job), input), input.patient_id, input.device_dispense_id);
    },
    [DEVICE_DISPENSE_JOBS.markInError]: async (job) => {
      const input = signedActionPayload.parse(job.request);
      return finish(await markDeviceDispenseInError(deps, callerOf(job), input), input.patient_id, input.device_dispense_id);
    },
  };
}
