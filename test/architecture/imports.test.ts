/**
 * The import graph of src: no cycle, and no import from a lower layer to a higher one (the README's
 * Architecture section). Reads the files as text; only relative imports count.
 */
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve('src');
const files = (readdirSync(SRC, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).map((f) => join(SRC, f));
const IMPORT = /^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'/gm;

/** File (relative to src) → the files (relative to src) it imports, and the packages it imports. */
const graph = new Map<string, { local: string[]; packages: string[] }>(
  files.map((file) => {
    const specifiers = [...readFileSync(file, 'utf8').matchAll(IMPORT)].map((m) => m[1]!);
    return [
      relative(SRC, file),
      {
        local: specifiers.filter((s) => s.startsWith('.')).map((s) => relative(SRC, resolve(dirname(file), s.replace(/\.js$/, '.ts')))),
        packages: specifiers.filter((s) => !s.startsWith('.')),
      },
    ];
  }),
);

describe('import graph of src', () => {
  it('has no cycle', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'visiting') return void cycles.push([...path.slice(path.indexOf(file)), file].join(' → '));
      state.set(file, 'visiting');
      for (const next of graph.get(file)?.local ?? []) visit(next, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it.each([
    ['readModels', 'projections/'],
    ['projections', 'stores.ts'],
    ['http', 'server.ts'],
    ['domain', 'eventStore/'],
    ['domain', 'database/'],
    ['domain', 'readModels/'],
    ['commands', 'http/'],
    ['queries', 'http/'],
  ])('nothing in src/%s imports %s', (folder, forbidden) => {
    const offending = [...graph].filter(([file, { local }]) => file.startsWith(`${folder}/`) && local.some((target) => target.startsWith(forbidden)));
    expect(offending.map(([file]) => file)).toEqual([]);
  });

  it('the domain imports no package with I/O (zod only)', () => {
    const packages = [...graph].filter(([file]) => file.startsWith('domain/')).flatMap(([, { packages }]) => packages);
    expect([...new Set(packages)]).toEqual(['zod']);
  });
});
