/**
 * The bulk paths (verify, import) hash through fastCanonicalJson; appends and the auditor's script use
 * the RFC 8785 library. Both must give the same bytes for any JSON, or a sound history would look
 * tampered. Also the Merkle tree: incremental roots equal roots from scratch, and every path leads to the root.
 */
import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import canonicalizeModule from 'canonicalize';
import { allNodes, leafHash, merkleRoot, MerkleTree, pathPlaces, rootFromPath, updatePaths } from '../../src/audit/merkle.js';
import type { JsonObject, JsonValue } from '../../src/eventStore/eventStore.js';
import { canonicalEvent, canonicalEventJson, eventHash, fastCanonicalJson, fastEventHash, hashedMetadata } from '../../src/eventStore/hashChain.js';
import { lineBatches } from '../../src/history/lineBatches.js';

type Canonicalize = (input: unknown) => string | undefined;
const canonicalize = ((canonicalizeModule as unknown as { default?: Canonicalize }).default ?? canonicalizeModule) as unknown as Canonicalize;

describe('canonical JSON', () => {
  it('fastCanonicalJson gives exactly the library output for arbitrary JSON (unicode keys, escapes, numbers)', () => {
    const json = fc.jsonValue({ maxDepth: 4, noUnicodeString: false }) as fc.Arbitrary<JsonValue>;
    fc.assert(
      fc.property(json, (value) => expect(fastCanonicalJson(value)).toBe(canonicalize(value))),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 500) },
    );
  });

  it('gives the library output for JSON parsed from canonical text too (the exported history: its fast path)', () => {
    const json = fc.jsonValue({ maxDepth: 4, noUnicodeString: false }) as fc.Arbitrary<JsonValue>;
    fc.assert(
      fc.property(json, (value) => {
        const canonical = canonicalize(value)!;
        expect(fastCanonicalJson(JSON.parse(canonical) as JsonValue)).toBe(canonical);
      }),
      { seed: 8785, numRuns: Number(process.env.FUZZ_RUNS ?? 500) },
    );
    // Integer-like keys enumerate in numeric order, not in UTF-16 order: never taken as canonical as they stand.
    const numericKeys = JSON.parse('{"10":1,"9":{"b":[-0,1e21,"\\ud800"],"a":null},"a":"x"}') as JsonValue;
    expect(fastCanonicalJson(numericKeys)).toBe(canonicalize(numericKeys));
    expect(fastCanonicalJson(numericKeys)).toBe('{"10":1,"9":{"a":null,"b":[0,1e+21,"\\ud800"]},"a":"x"}');
    // Sorted but with what JSON.stringify writes otherwise: a Date (toJSON) and undefined members.
    const built = { a: new Date(0), b: undefined, c: [undefined, 2] } as unknown as JsonValue;
    expect(fastCanonicalJson(built)).toBe(canonicalize(built));
  });

  it('follows RFC 8785 on its examples: key order by UTF-16 code units, ES number form, minimal escapes', () => {
    const value = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    const expected =
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign","\ud83d\ude00":"Emoji","\ufb33":"Hebrew Letter Dalet With Dagesh"}';
    expect(fastCanonicalJson(value)).toBe(expected);
    expect(canonicalize(value)).toBe(expected);
    expect(fastCanonicalJson([1e21, 1e-7, 0.1, -0, 333333333.33333329, 'a\u2028'])).toBe('[1e+21,1e-7,0.1,0,333333333.3333333,"a\u2028"]');
  });

  it('hashes an event as {data, metadata, revision, stream, type}', () => {
    const json = canonicalEventJson({ stream: 's', revision: 2n, type: 'T', data: { b: 1, a: [true, null] }, metadata: { event_id: 'e' } });
    expect(json).toBe('{"data":{"a":[true,null],"b":1},"metadata":{"event_id":"e"},"revision":2,"stream":"s","type":"T"}');
  });
});

describe('Merkle tree', () => {
  const leaves = (n: number, salt = '') =>
    Array.from({ length: n }, (_, i) => leafHash({ stream: `s-${i}`, revision: i, hash: `${salt}${i}`.padStart(64, '0') }));

  it("hashes a leaf as SHA-256(0x00 ‖ the library's canonical {hash, revision, stream}), for any stream name", () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.nat(), fc.stringMatching(/^[0-9a-f]{64}$/), (stream, revision, hash) => {
        const expected = createHash('sha256')
          .update(Buffer.from([0]))
          .update(canonicalize({ hash, revision, stream })!, 'utf8')
          .digest('hex');
        expect(leafHash({ stream, revision, hash }).toString('hex')).toBe(expected);
      }),
      { seed: 1612, numRuns: 300 },
    );
  });

  it('updated leaf by leaf gives the root computed from scratch, and every path leads to it', () => {
    for (const n of [1, 2, 3, 5, 8, 13]) {
      const tree = new MerkleTree();
      leaves(n).forEach((leaf, i) => {
        tree.set(i, leaf);
        if (i % 2 === 0) tree.root(); // roots asked for in between too
      });
      const changed = leaves(n, '1');
      tree.set(n - 1, changed[n - 1]!);
      const expected = merkleRoot([...leaves(n).slice(0, n - 1), changed[n - 1]!])!;
      expect(tree.root()!.toString('hex')).toBe(expected.toString('hex'));
      for (let i = 0; i < n; i++) {
        const leaf = i === n - 1 ? changed[i]! : leaves(n)[i]!;
        expect(rootFromPath(leaf, tree.path(i)).toString('hex')).toBe(expected.toString('hex'));
      }
      // A different leaf does not reach the root through the same path.
      if (n > 1) expect(rootFromPath(leaves(n, '2')[0]!, tree.path(0)).toString('hex')).not.toBe(expected.toString('hex'));
    }
  });

  /** The definition, level by level, independent of the tree's incremental code. */
  const specRoot = (nodes: Buffer[]): string => {
    let level = nodes;
    while (level.length > 1)
      level = Array.from({ length: Math.ceil(level.length / 2) }, (_, i) =>
        level[2 * i + 1]
          ? createHash('sha256')
              .update(Buffer.from([1]))
              .update(level[2 * i]!)
              .update(level[2 * i + 1]!)
              .digest()
          : level[2 * i]!,
      );
    return level[0]!.toString('hex');
  };

  it("keeps the definition's root through any sequence of appends and updates, across its buffers' growth", () => {
    const leafOf = (i: number, version: number) => leafHash({ stream: `s-${i}`, revision: version, hash: String(version).padStart(64, '0') });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2_100 }), // a start that crosses 1,024 and 2,048 leaves (the buffers' first growths) in many runs
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 80 }), fc.boolean()), { minLength: 1, maxLength: 30 }),
        (start, steps) => {
          const tree = new MerkleTree();
          const model: Buffer[] = [];
          const append = (n: number) => {
            for (let i = 0; i < n; i++) {
              tree.set(model.length, leafOf(model.length, 0));
              model.push(leafOf(model.length, 0));
            }
          };
          append(1);
          tree.root(); // a root asked for before the tree grows
          append(start - 1);
          for (const [at, appended, askRoot] of steps) {
            append(appended); // a burst of new streams, then one stream moves
            const index = at % model.length;
            model[index] = leafOf(index, at + 1);
            tree.set(index, model[index]!);
            if (askRoot) expect(tree.root()!.toString('hex')).toBe(specRoot(model));
          }
          const root = specRoot(model);
          expect(tree.root()!.toString('hex')).toBe(root);
          for (let i = start % 7; i < model.length; i += 7) expect(rootFromPath(model[i]!, tree.path(i)).toString('hex')).toBe(root);
          expect(tree.root()!.toString('hex')).toBe(root);
        },
      ),
      { seed: 1612, numRuns: 25 },
    );
  });

  it('updates a stored tree along the changed paths only, to the same nodes as a tree written from scratch', async () => {
    const leafOf = (i: number, version: number) => leafHash({ stream: `s-${i}`, revision: version, hash: String(version).padStart(64, '0') });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 300 }),
        fc.array(fc.tuple(fc.nat({ max: 40 }), fc.array(fc.nat(), { maxLength: 12 })), { minLength: 1, maxLength: 8 }),
        async (start, anchors) => {
          const model = Array.from({ length: start }, (_, i) => leafOf(i, 0));
          // The stored tree, as audit_merkle_nodes holds it: level → index → hash.
          const stored = new Map<number, Map<number, Buffer>>();
          const store = (nodes: Array<{ level: number; index: number; hash: Buffer }>) => {
            for (const n of nodes) (stored.get(n.level) ?? stored.set(n.level, new Map()).get(n.level)!).set(n.index, n.hash);
          };
          store(allNodes(model).nodes);
          let reads = 0;
          for (const [appended, moved] of anchors) {
            const changed = new Map<number, Buffer>();
            for (let i = 0; i < appended; i++) changed.set(model.length, (model[model.length] = leafOf(model.length, 0)));
            for (const at of moved) changed.set(at % model.length, (model[at % model.length] = leafOf(at % model.length, at + 1)));
            if (changed.size === 0) continue;
            const { nodes, root } = await updatePaths(model.length, changed, async (level, indexes) => {
              reads += indexes.length;
              return new Map(indexes.filter((i) => stored.get(level)?.has(i)).map((i) => [i, stored.get(level)!.get(i)!]));
            });
            store(nodes);
            const scratch = allNodes(model);
            expect(root.toString('hex')).toBe(specRoot(model));
            // Every node of the updated store equals the tree written from scratch.
            for (const n of scratch.nodes) expect(stored.get(n.level)?.get(n.index)?.toString('hex')).toBe(n.hash.toString('hex'));
            for (let i = 0; i < model.length; i += 3) {
              const { siblings, root: top } = pathPlaces(model.length, i);
              const path = siblings.map((n) => ({ side: n.side, hash: stored.get(n.level)!.get(n.index)!.toString('hex') }));
              expect(rootFromPath(model[i]!, path).toString('hex')).toBe(stored.get(top.level)!.get(0)!.toString('hex'));
            }
          }
          // Reads stay near the changed paths (a whole-tree read would be ~2 × leaves per anchor).
          expect(reads).toBeLessThanOrEqual(anchors.reduce((n, [appended, moved]) => n + (appended + moved.length) * 2 * 10, 0));
        },
      ),
      { seed: 1612, numRuns: 25 },
    );
  });
});

describe('history lines from a byte stream', () => {
  it('keeps a character whose bytes are split between two chunks', async () => {
    const bytes = Buffer.from('{"unit":"шт"}\n{"b":1}\n', 'utf8');
    const split = bytes.indexOf(Buffer.from('ш', 'utf8')) + 1; // inside the two bytes of "ш"
    async function* chunks() {
      yield bytes.subarray(0, split);
      yield bytes.subarray(split);
    }
    const lines: string[] = [];
    for await (const batch of lineBatches(chunks())) lines.push(...batch);
    expect(lines).toEqual(['{"unit":"шт"}', '{"b":1}']);
  });
});

describe('event hashes', () => {
  it('the bulk path hashes exactly as the library path', () => {
    const content = {
      stream: 'device_dispense-ш"1',
      revision: 7n,
      type: 'T\n',
      data: { z: [1.5, { b: 'é', a: null }], a: '\u2028' },
      metadata: { event_id: 'e', user_id: null },
    };
    expect(fastEventHash('ab'.repeat(32), content)).toBe(eventHash('ab'.repeat(32), content));
  });

  it('stores canonical texts and hashes them as the library does, with complete or partial metadata', () => {
    // A Date (typed out, but possible at run time) is stored and hashed as its toJSON, like the library does.
    const data = { z: [1.5, { b: 'é', a: null }], a: '\u2028', at: new Date('2026-01-02T03:04:05Z') } as unknown as JsonObject;
    const complete = { user_id: 'u', event_id: 'e', correlation_id: 'c', causation_id: null, client_id: 'le', occurred_at: 't', schema_version: 1 };
    for (const stored of [complete, { event_id: 'e', userId: 'legacy' }]) {
      const event = canonicalEvent('cd'.repeat(32), 'device_dispense-1', 3n, 'T', data, stored);
      expect(event.data).toBe(canonicalize(data));
      expect(event.metadata).toBe(canonicalize(stored));
      expect(JSON.parse(event.data)).toEqual(JSON.parse(JSON.stringify(data)));
      expect(event.hash).toBe(eventHash('cd'.repeat(32), { stream: 'device_dispense-1', revision: 3n, type: 'T', data, metadata: hashedMetadata(stored) }));
    }
  });
});
