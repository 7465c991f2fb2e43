/** Emmett's decider shape: pure functions, no I/O. */
export type Decider<State, Command, Event> = {
  initialState: () => State;
  evolve: (state: State, event: Event) => State;
  /** Returns the events the command causes, or throws the EsozError that refuses it. */
  decide: (command: Command, state: State) => Event[];
};

/** Who did something, for whom, and when: every domain event records it. */
export type Actor = { at: string; by: string; legal_entity_id: string | null };

/** updated_by of changes the system makes by itself (auto-expiration). */
export const SYSTEM_USER_ID = '00000000-0000-0000-0000-000000000000';
