/**
 * zod issues → ЕСОЗ `invalid[]` entries (`entry` as a `$.path`, `entry_type`, `rules[{rule, description,
 * params}]`), following the rule names ЕСОЗ's JSON-schema validator uses (required, cast, inclusion,
 * format, length, schemata).
 */
import type { z } from 'zod';
import { validationFailed, type InvalidEntry } from '../domain/shared/esozError.js';
import { jsonPath } from '../domain/shared/jsonText.js';

export type EntryType = 'json_data_property' | 'query_parameter' | 'path_parameter';

const typeName = (value: unknown): string => {
  if (value === null) return 'Null';
  if (Array.isArray(value)) return 'List';
  if (typeof value === 'number') return Number.isInteger(value) ? 'Integer' : 'Number';
  const name = typeof value;
  return name.charAt(0).toUpperCase() + name.slice(1);
};
const capitalise = (word: string) => (word === 'array' ? 'List' : word.charAt(0).toUpperCase() + word.slice(1));

function toEntries(issue: z.core.$ZodIssue, entryType: EntryType): InvalidEntry[] {
  const entry = jsonPath(issue.path);
  const one = (rule: string, description: string, params: unknown[] = []): InvalidEntry[] => [
    { entry, entry_type: entryType, rules: [{ rule, description, params }] },
  ];
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) {
        const key = issue.path[issue.path.length - 1];
        return one('required', `required property ${String(key)} was not present`);
      }
      return one('cast', `type mismatch. Expected ${capitalise(issue.expected)} but got ${typeName(issue.input)}`, [issue.expected]);
    case 'invalid_value':
      return one('inclusion', 'value is not allowed in enum', [...issue.values]);
    case 'invalid_format':
      return one('format', `expected ${JSON.stringify(issue.input ?? '')} to be a valid ${issue.format}`, [issue.format]);
    case 'too_small':
    case 'too_big': {
      const rule = issue.origin === 'number' || issue.origin === 'int' || issue.origin === 'bigint' ? 'number' : 'length';
      return one(rule, issue.message, [Number(issue.code === 'too_small' ? issue.minimum : issue.maximum)]);
    }
    case 'unrecognized_keys':
      return issue.keys.map((key) => ({
        entry: jsonPath([...issue.path, key]),
        entry_type: entryType,
        rules: [{ rule: 'schemata', description: 'schema does not allow additional properties', params: [] }],
      }));
    case 'invalid_union': {
      // Report the branch that got furthest, or the union itself when none did.
      const branches = issue.errors.map((branch) => branch.flatMap((inner) => toEntries({ ...inner, path: [...issue.path, ...inner.path] }, entryType)));
      const best = branches.sort((a, b) => a.length - b.length)[0];
      return best && best.length > 0 ? best : one('invalid', issue.message);
    }
    default:
      return one('invalid', issue.message);
  }
}

function toValidationError(error: z.ZodError, entryType: EntryType) {
  return validationFailed(error.issues.flatMap((issue) => toEntries(issue, entryType)));
}

export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, entryType: EntryType): z.infer<S> {
  const result = schema.safeParse(input, { reportInput: true });
  if (!result.success) throw toValidationError(result.error, entryType);
  return result.data;
}
