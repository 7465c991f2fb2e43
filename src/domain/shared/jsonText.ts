/**
 * Text that PostgreSQL cannot store (jsonb and text refuse NUL; jsonb refuses unpaired UTF-16
 * surrogates) and JSON nested deeper than any ЕСОЗ document: found before any store sees it (request
 * bodies in src/http/inputGuard.ts, signed payloads in src/signatures/verifySignedContent.ts).
 */
import type { InvalidEntry } from './esozError.js';

/** `$.a.b[0]`: the JSON path ЕСОЗ names an `invalid[]` entry by. */
export const jsonPath = (path: readonly PropertyKey[]): string =>
  path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : `${acc}.${String(key)}`), '$');

/** No ЕСОЗ request document nests deeper than a handful of levels; 32 leaves ample room. */
export const MAX_JSON_DEPTH = 32;

// A NUL, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one.
const UNSTORABLE_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export const isStorableText = (text: string): boolean => !UNSTORABLE_TEXT.test(text);

export type JsonProblem = { kind: 'too_deep' } | { kind: 'text'; entry: InvalidEntry };

const textRule = {
  rule: 'format',
  description: 'must not contain NUL characters or unpaired UTF-16 surrogates',
  params: [] as unknown[],
};

/** The first problem in a parsed JSON value (iterative: a deep document must not overflow the stack). */
export function findJsonProblem(value: unknown, entryType: string, maxDepth = MAX_JSON_DEPTH): JsonProblem | null {
  const stack: Array<{ value: unknown; path: PropertyKey[] }> = [{ value, path: [] }];
  while (stack.length > 0) {
    const { value: current, path } = stack.pop()!;
    if (path.length > maxDepth) return { kind: 'too_deep' };
    if (typeof current === 'string') {
      if (!isStorableText(current)) return { kind: 'text', entry: { entry: jsonPath(path), entry_type: entryType, rules: [textRule] } };
    } else if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) stack.push({ value: current[i], path: [...path, i] });
    } else if (current !== null && typeof current === 'object') {
      const entries = Object.entries(current);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, inner] = entries[i]!;
        // A key is stored too: report it at its own path.
        if (!isStorableText(key)) return { kind: 'text', entry: { entry: jsonPath([...path, key]), entry_type: entryType, rules: [textRule] } };
        stack.push({ value: inner, path: [...path, key] });
      }
    }
  }
  return null;
}
