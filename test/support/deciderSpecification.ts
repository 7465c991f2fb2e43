/**
 * A tiny Emmett-style Given/When/Then for deciders (pure decide/evolve, no I/O):
 *
 *   const given = DeciderSpecification.for(deviceDispenseDecider);
 *   given([created]).when(stop).then([stopped]);
 *   given([created, stopped]).when(stop).thenThrows((error) => expect(error).toMatchObject({ status: 409 }));
 *
 * `given` events are folded with evolve from initialState; decide runs on that state.
 */
import { expect } from '@jest/globals';
import type { Decider } from '../../src/domain/shared/decider.js';

/** The state after the events (evolve folded from initialState). */
export const fold = <State, Command, Event>(decider: Decider<State, Command, Event>, events: readonly Event[]): State =>
  events.reduce(decider.evolve, decider.initialState());

export type ThenClause<Event> = {
  /** decide returned exactly these events. */
  then(expected: Event[]): void;
  /** decide returned no events (and did not throw). */
  thenNothingHappened(): void;
  /** decide threw; `check` asserts on what it threw. */
  thenThrows(check: (error: unknown) => void): void;
};

export type WhenClause<Command, Event> = { when(command: Command): ThenClause<Event> };

export const DeciderSpecification = {
  for<State, Command, Event>(decider: Decider<State, Command, Event>) {
    return (given: Event[]): WhenClause<Command, Event> => ({
      when(command: Command): ThenClause<Event> {
        const decide = (): Event[] => decider.decide(command, fold(decider, given));
        return {
          then(expected) {
            expect(decide()).toEqual(expected);
          },
          thenNothingHappened() {
            expect(decide()).toEqual([]);
          },
          thenThrows(check) {
            let events: Event[];
            try {
              events = decide();
            } catch (error) {
              check(error);
              return;
            }
            throw new Error(`Expected decide to throw, but it returned ${JSON.stringify(events)}`);
          },
        };
      },
    });
  },
};
