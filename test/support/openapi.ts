/**
 * The official ЕСОЗ schemas (shared/spec/openapi/*.json, draft 2020-12) as test oracles: load an
 * operation's request or response schema, `relaxed()` of its conversion artifacts, and validate with
 * ajv. `schemaErrors()` lists what fails as `<instance path> <keyword>: <message>` so a failing
 * expectation names the exact place.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
// ajv is CommonJS; under native ESM (and ts-jest's ESM mode) its default import is the module
// object, not the class. The named export is the class in both worlds.
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';

export const OPENAPI_DIR = path.resolve(process.cwd(), '../shared/spec/openapi');

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };
/** A JSON Schema: an object, or true/false. */
export type Schema = JsonObject | boolean;

export type Operation = {
  method: string;
  path: string;
  requestBody: { contentType: string; required: boolean; schema: Schema } | null;
  responses: Record<string, Schema | null>;
};

const isObject = (value: Json | undefined): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

const cache = new Map<string, Operation>();

/** One operation file, e.g. `device-dispense-create.json`. */
export function loadOperation(file: string): Operation {
  let operation = cache.get(file);
  if (!operation) {
    operation = JSON.parse(readFileSync(path.join(OPENAPI_DIR, file), 'utf8')) as Operation;
    cache.set(file, operation);
  }
  return operation;
}

export function requestSchema(file: string): Schema {
  const body = loadOperation(file).requestBody;
  if (!body) throw new Error(`${file} has no request body`);
  return body.schema;
}

export function responseSchema(file: string, code: number | string): Schema {
  const schema = loadOperation(file).responses[String(code)];
  if (schema === undefined || schema === null) throw new Error(`${file} has no schema for response ${code}`);
  return schema;
}

// --- relaxed() ----------------------------------------------------------------------------------------

/** Keywords whose value is one subschema. */
const SUBSCHEMA = ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains', 'propertyNames', 'unevaluatedItems', 'unevaluatedProperties'];
/** Keywords whose value is a list of subschemas. */
const SUBSCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems'];
/** Keywords whose value maps names to subschemas. */
const SUBSCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'dependentSchemas'];
const BRANCHES = ['allOf', 'anyOf', 'oneOf'];

/** Property names a schema declares itself or through its allOf/anyOf/oneOf branches. */
function declaredProperties(schema: Json | undefined): Set<string> {
  const names = new Set<string>();
  if (!isObject(schema)) return names;
  if (isObject(schema.properties)) for (const name of Object.keys(schema.properties)) names.add(name);
  for (const keyword of BRANCHES) {
    const branches = schema[keyword];
    if (Array.isArray(branches)) for (const branch of branches) for (const name of declaredProperties(branch)) names.add(name);
  }
  return names;
}

/** A copy of `schema` whose `properties` also name `names` (as `{}`, i.e. anything: the branch that declares a name still validates it). */
function withProperties(schema: JsonObject, names: Iterable<string>): JsonObject {
  const properties: JsonObject = isObject(schema.properties) ? { ...schema.properties } : {};
  let added = false;
  for (const name of names)
    if (!(name in properties)) {
      properties[name] = {};
      added = true;
    }
  return added ? { ...schema, properties } : schema;
}

/**
 * The schema without two artifacts of the YAML → JSON Schema conversion (openapi/README.md,
 * "Probable conversion artifacts"), and nothing else:
 *
 * (a) a single-value `enum` is dropped: those are the spec's examples turned into enums
 *     (`sell_price: [18.65]`, `quantity.code: ['piece']`, `program_device.identifier.value: [<uuid>]`,
 *     `display_value: ['null']` …), not rules. Enums of two or more values stay.
 *
 * (b) `additionalProperties: false` next to branches: in `details[]` the schema is
 *     `allOf: [{oneOf: [{properties: {device}}, {properties: {device_code}}]}, {properties: {quantity, …}, additionalProperties: false}]`,
 *     and since `additionalProperties` only sees its own schema's `properties`, every valid detail
 *     (it must have `device` or `device_code`) would be refused. So where an allOf member has
 *     `additionalProperties: false`, the property names its sibling members declare (directly or in
 *     their oneOf/anyOf/allOf branches) are added to its `properties` as `{}`; likewise for an object
 *     schema that has `additionalProperties: false` itself together with oneOf/anyOf/allOf branches.
 *     Any other property is still refused, and the branches still validate the added ones.
 *
 * Everything else (required, type, additionalProperties on plain objects, multi-value enums, oneOf)
 * is kept, so a wrong document still fails. The input is not modified.
 */
export function relaxed(schema: Schema): Schema {
  return relaxNode(schema) as Schema;
}

function relaxNode(node: Json): Json {
  if (!isObject(node)) return node;
  let out: JsonObject = {};
  for (const [keyword, value] of Object.entries(node)) {
    if (keyword === 'enum' && Array.isArray(value) && value.length === 1) continue; // (a)
    if (SUBSCHEMA.includes(keyword)) out[keyword] = relaxNode(value);
    else if (SUBSCHEMA_LISTS.includes(keyword) && Array.isArray(value)) out[keyword] = value.map(relaxNode);
    else if (SUBSCHEMA_MAPS.includes(keyword) && isObject(value))
      out[keyword] = Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, relaxNode(sub)]));
    else out[keyword] = value;
  }
  // (b) members of an allOf are all applied to the same object: each closed member learns its siblings' names.
  const members = out.allOf;
  if (Array.isArray(members)) {
    out.allOf = members.map((member, i) => {
      if (!isObject(member) || member.additionalProperties !== false) return member;
      const siblings = new Set(members.flatMap((other, j) => (j === i ? [] : [...declaredProperties(other)])));
      return withProperties(member, siblings);
    });
  }
  // (b) a closed object schema with branches of its own.
  if (out.additionalProperties === false && BRANCHES.some((keyword) => Array.isArray(out[keyword]))) {
    const fromBranches = BRANCHES.flatMap((keyword) => {
      const branches = out[keyword];
      return Array.isArray(branches) ? branches.flatMap((branch) => [...declaredProperties(branch)]) : [];
    });
    out = withProperties(out, fromBranches);
  }
  return out;
}

// --- validation ---------------------------------------------------------------------------------------

const ajv = new Ajv2020({ allErrors: true, strictTypes: false, strictTuples: false });
const compiled = new WeakMap<object, ValidateFunction>();

function compile(schema: Schema): ValidateFunction {
  if (typeof schema === 'boolean') return ajv.compile(schema);
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(schema, validate);
  }
  return validate;
}

const describeError = (error: ErrorObject): string => {
  const params = error.keyword === 'additionalProperties' ? ` (${String(error.params.additionalProperty)})` : '';
  return `${error.instancePath || '/'} ${error.keyword}${params}: ${error.message ?? ''} [${error.schemaPath}]`;
};

/** What fails when `value` is validated against `schema`: `[]` when it is valid. */
export function schemaErrors(schema: Schema, value: unknown): string[] {
  const validate = compile(schema);
  return validate(value) ? [] : (validate.errors ?? []).map(describeError);
}

/** `schemaErrors` against the relaxed schema (what a test of our own documents should use). */
const relaxedCache = new WeakMap<object, Schema>();
export function relaxedSchemaErrors(schema: Schema, value: unknown): string[] {
  if (typeof schema === 'boolean') return schemaErrors(schema, value);
  let relaxedSchema = relaxedCache.get(schema);
  if (!relaxedSchema) {
    relaxedSchema = relaxed(schema);
    relaxedCache.set(schema, relaxedSchema);
  }
  return schemaErrors(relaxedSchema, value);
}
