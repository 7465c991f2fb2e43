import type { Position } from '../../eventStore/eventStore.js';

/** `position` of the last appended event (null: nothing appended, e.g. a re-run of a finished job). */
export type CommandResult = { position: Position | null };
