/**
 * Device dispense auto-expiration (spec §1.1, RC_ Device dispense auto-expiration): "Find device
 * dispenses in status IN_PROGRESS where inserted_at + device_dispense_ttl is in the past → update
 * status to UNKNOWN". The sweep finds candidates in the read model; the decision is made on the
 * stream, so a dispense stopped or completed meanwhile is left alone.
 */
import { uuidv7 } from '../shared/uuidv7.js';
import { deviceDispenseDecider } from '../domain/deviceDispense/decider.js';
import { SYSTEM_USER_ID } from '../domain/shared/decider.js';
import type { DeviceDispenseStore } from '../readModels/deviceDispenseStore.js';
import { actorOf, type Caller, type CommandDeps } from './shared/commandContext.js';
import { handleCommand } from './shared/commandHandler.js';
import { deviceDispenseCommandStream } from './shared/deviceDispenses.js';
import type { CommandResult } from './shared/result.js';

const DAY_MS = 24 * 3600 * 1000;

export function expireDeviceDispense(deps: CommandDeps, system: Caller<null>, id: string, ttlDays: number): Promise<CommandResult> {
  // One sweep may meet a dispense twice (pages shift): the second time it is no longer in progress
  // and nothing is expired, so the sweep counts it once; hence no skipping by causation id.
  const options = { skipIfAlreadyHandled: false };
  return handleCommand(
    deps,
    deviceDispenseCommandStream(id),
    system,
    (state, now) => {
      if (!state || Date.parse(state.inserted_at) + ttlDays * DAY_MS > now.getTime()) return [];
      return deviceDispenseDecider.decide({ type: 'ExpireDeviceDispense', ttl_days: ttlDays, actor: actorOf(system, now) }, state);
    },
    options,
  );
}

/** One sweep: expires every in_progress dispense older than the TTL; returns how many it expired. */
export async function expireDeviceDispenses(deps: CommandDeps, readModel: DeviceDispenseStore): Promise<number> {
  const runId = uuidv7();
  const system: Caller<null> = { userId: SYSTEM_USER_ID, legalEntityId: null, correlationId: runId, causationId: runId };
  // One TTL for the whole sweep (device_dispense_ttl_days of the config, as of the sweep's start).
  const ttlDays = (await deps.reference.view({})).config.device_dispense_ttl_days;
  const cutoff = new Date(deps.clock().getTime() - ttlDays * DAY_MS).toISOString();
  let expired = 0;
  // Pages may shift as the projection catches up with our own expirations; whatever a sweep misses,
  // the next one finds.
  for (let page = 1; ; page++) {
    const { items } = await readModel.search({ status: 'in_progress', inserted_at_to: cutoff }, { page, pageSize: 100 });
    if (items.length === 0) return expired;
    for (const record of items) if ((await expireDeviceDispense(deps, system, record.id, ttlDays)).position) expired += 1;
  }
}
