/**
 * GET /api/openapi.json: a valid OpenAPI 3.1 document (checked by a real validator) that documents
 * every route the router has and routes every path it documents; bodies and queries come from the
 * routes' own zod schemas.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { Validator } from '@seriousme/openapi-schema-validator';
import request from 'supertest';
import { ALL_SCOPES } from '../../src/auth/scopes.js';
import { registeredRoutes } from '../../src/http/app.js';
import { openApiPath } from '../../src/http/openapi.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

type Operation = { security: Array<Record<string, string[]>>; requestBody?: unknown; responses: Record<string, unknown>; parameters: Array<{ name?: string }> };

type Document = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, unknown> };
};

let t: TestServer;
let doc: Document;
beforeAll(async () => {
  t = await startTestServer();
  const res = await request(t.app).get('/api/openapi.json');
  expect(res.status).toBe(200);
  doc = res.body as Document;
});
afterAll(async () => t.close());

it('is valid OpenAPI 3.1', async () => {
  expect(doc.openapi).toBe('3.1.0');
  const result = await new Validator().validate(structuredClone(doc) as Record<string, unknown>);
  expect(result.errors ?? []).toEqual([]);
  expect(result.valid).toBe(true);
});

it('documents every registered route and routes every documented operation', () => {
  const routed = new Set(
    registeredRoutes(t.app)
      .filter((r) => r.path !== '/docs/init.js') // the docs page's own script
      .map((r) => `${r.method} ${openApiPath(r.path)}`),
  );
  const documented = new Set(Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method} ${path}`)));
  expect([...routed].filter((r) => !documented.has(r))).toEqual([]);
  expect([...documented].filter((d) => !routed.has(d))).toEqual([]);
  expect(routed.size).toBeGreaterThan(20);
});

it('has the bearer scheme, each operation’s scope, the 202 + job answer and the error JSON', () => {
  expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
  const create = doc.paths['/api/patients/{patient_id}/device_dispenses']!.post!;
  expect(create.security).toEqual([{ bearerAuth: ['device_dispense:write'] }]);
  expect(create.responses['202']).toEqual({ $ref: '#/components/responses/Accepted' });
  expect(create.responses['422']).toEqual({ $ref: '#/components/responses/Error' });
  // The body schema is the route's zod schema: its required fields are there.
  expect(JSON.stringify(create.requestBody)).toContain('"required"');
  expect(doc.paths['/api/audit/events']!.get!.security).toEqual([{ bearerAuth: ['audit:read', 'audit:read_all'] }]);
  expect(doc.paths['/health/ready']!.get!.security).toEqual([]);
  expect(doc.paths['/metrics']!.get!.security).toEqual([{ bearerAuth: ['admin:read'] }]);
  expect(doc.paths['/api/licenses']!.get!.parameters.map((p) => p.name)).toEqual(expect.arrayContaining(['page', 'page_size']));
});

it('serves /docs and its assets from this server', async () => {
  const page = await request(t.app).get('/docs');
  expect(page.status).toBe(200);
  expect(page.text).toContain('/docs/assets/swagger-ui-bundle.js');
  expect(page.text).not.toMatch(/https?:\/\//);
  const bundle = await request(t.app).get('/docs/assets/swagger-ui-bundle.js');
  expect(bundle.status).toBe(200);
});

it('documents the scope each route really requires (a token without it gets 403, one with only it does not)', async () => {
  const uuid = '00000000-0000-4000-8000-000000000000';
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const scopes = operation.security[0]?.bearerAuth;
      if (!scopes || scopes.length === 0) continue;
      const url = path.replace(/\{\w+\}/g, uuid);
      const call = async (scope: string) =>
        request(t.app)
          [method as 'get' | 'post' | 'patch'](url)
          .set('authorization', `Bearer ${await t.token({ scope })}`)
          .send({});
      const without = await call(ALL_SCOPES.filter((s) => !scopes.includes(s)).join(' '));
      expect([`${method} ${path}`, without.status]).toEqual([`${method} ${path}`, 403]);
      for (const scope of scopes) {
        const withIt = await call(scope);
        expect([`${method} ${path} with ${scope}`, withIt.status === 401 || withIt.status === 403]).toEqual([`${method} ${path} with ${scope}`, false]);
      }
    }
  }
});
