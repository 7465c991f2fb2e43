#!/usr/bin/env node
// An auditor's check of one stream's history, from its proof alone (no access to the registry):
//
//   curl -s -H "Authorization: Bearer $TOKEN" "$URL/api/audit/streams/device_dispense-<id>/proof" > proof.json
//   node examples/verify-proof.mjs proof.json anchors-key.json      # the registry's anchor public key (JWK or JWKS)
//
// 1. every event's hash = SHA-256(prev_hash ‖ RFC 8785 JSON of {stream, revision, type, data, metadata}),
//    chained from 64 zeros; 2. the anchored head is in that chain; 3. its Merkle path leads to the root
//    the anchor signed; 4. the anchor's JWS verifies with the key. Exit 0 and VERIFIED, or exit 1 and why.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import canonicalize from 'canonicalize';
import { compactVerify, createLocalJWKSet } from 'jose';

const [proofFile, keyFile] = process.argv.slice(2);
if (!proofFile || !keyFile) {
  console.error('usage: node examples/verify-proof.mjs proof.json anchors-key.json');
  process.exit(2);
}
const fail = (why) => {
  console.log(`NOT VERIFIED: ${why}`);
  process.exit(1);
};
const sha256 = (...parts) => parts.reduce((h, part) => h.update(part), createHash('sha256')).digest();
const body = JSON.parse(readFileSync(proofFile, 'utf8'));
const proof = body.data ?? body; // the API's envelope, or the proof itself
const key = JSON.parse(readFileSync(keyFile, 'utf8'));

// 1. The chain.
let prev = '0'.repeat(64);
for (const [i, e] of proof.events.entries()) {
  const at = `${proof.stream_name} revision ${e.revision} (event ${e.metadata.event_id})`;
  if (e.revision !== i) fail(`${at}: expected revision ${i}`);
  if (e.prev_hash !== prev) fail(`${at}: prev_hash does not link to the previous event`);
  const content = canonicalize({ stream: e.stream_name, revision: e.revision, type: e.event_type, data: e.data, metadata: e.metadata });
  const hash = sha256(Buffer.from(prev, 'hex'), Buffer.from(content, 'utf8')).toString('hex');
  if (hash !== e.hash) fail(`${at}: its content does not give its hash (changed after it was written)`);
  prev = hash;
}

// 2. The anchored head is in the chain.
const anchor = proof.anchor;
if (!anchor) fail('no signed anchor covers this stream yet');
const { leaf } = anchor;
if (leaf.stream !== proof.stream_name || proof.events[leaf.revision]?.hash !== leaf.hash) fail(`the anchored head (revision ${leaf.revision}) is not in this chain`);

// 3. The Merkle path from the head to the root.
let node = sha256(Buffer.from([0]), Buffer.from(canonicalize({ hash: leaf.hash, revision: leaf.revision, stream: leaf.stream }), 'utf8'));
for (const step of anchor.path) {
  const sibling = Buffer.from(step.hash, 'hex');
  node = step.side === 'left' ? sha256(Buffer.from([1]), sibling, node) : sha256(Buffer.from([1]), node, sibling);
}

// 4. The signature over the root.
let signed;
try {
  const { payload } = await compactVerify(anchor.jws, createLocalJWKSet(key.keys ? key : { keys: [key] }), { algorithms: ['ES256', 'RS256'] });
  signed = JSON.parse(new TextDecoder().decode(payload));
} catch (error) {
  fail(`the anchor's signature does not verify: ${error.message}`);
}
if (signed.merkle_root !== node.toString('hex')) fail('the Merkle path does not lead to the signed root');
if (signed.merkle_root !== anchor.merkle_root || signed.covers.last_event_id !== anchor.covers.last_event_id) fail("the anchor's fields differ from what it signed");

const unanchored = proof.unanchored_from === null ? '' : `; revisions ${proof.unanchored_from}… chained, not anchored yet`;
console.log(
  `VERIFIED: ${proof.stream_name}: revisions 0…${proof.events.length - 1} chained; revision ${leaf.revision} under the anchor of ` +
    `${signed.anchored_at} (first ${signed.covers.event_count} events of the log, ${signed.streams} streams, root ${signed.merkle_root})${unanchored}`,
);
