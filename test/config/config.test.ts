import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../../src/config.js';
import demo from '../../src/referenceData/demoReferenceData.json' with { type: 'json' };
import { parseReferenceData, ReferenceDataError } from '../../src/referenceData/referenceData.js';

describe('configuration', () => {
  it('defaults to the embedded PGlite store on port 4000', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ PORT: 4000, EVENT_STORE: 'pglite', LOG_LEVEL: 'info' });
    expect(config.DATA_DIR).toMatch(/\/data$/);
  });

  it('uses the PostgreSQL server when DATABASE_URL is set', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://u@h/db' }).EVENT_STORE).toBe('postgres');
  });

  it('stops on bad values with one line naming each of them', () => {
    const attempt = () => loadConfig({ PORT: 'eighty', MONGO_URL: 'http://x' });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/^Invalid configuration: PORT must be a port number; MONGO_URL must start with mongodb\|mongodb\+srv:\/\/$/);
    expect(() => loadConfig({ EVENT_STORE: 'eventstoredb' })).toThrow('Invalid configuration: EVENTSTORE_URL is required when EVENT_STORE=eventstoredb');
  });

  it('defaults the token lifetime to 24 h and the clock skew to 60 s; AUTH_AUDIENCE is optional', () => {
    expect(loadConfig({})).toMatchObject({ AUTH_MAX_TOKEN_LIFETIME_SECONDS: 86400, AUTH_CLOCK_SKEW_SECONDS: 60 });
    expect(loadConfig({}).AUTH_AUDIENCE).toBeUndefined();
    expect(loadConfig({ AUTH_AUDIENCE: 'urn:registry', AUTH_MAX_TOKEN_LIFETIME_SECONDS: '3600', AUTH_CLOCK_SKEW_SECONDS: '0' })).toMatchObject({
      AUTH_AUDIENCE: 'urn:registry',
      AUTH_MAX_TOKEN_LIFETIME_SECONDS: 3600,
      AUTH_CLOCK_SKEW_SECONDS: 0,
    });
  });

  it('anchors every 1000 events, checked every 60 s by default; bad anchor settings stop the start', () => {
    expect(loadConfig({})).toMatchObject({ AUDIT_ANCHOR_EVERY_EVENTS: 1000, AUDIT_ANCHOR_INTERVAL_SECONDS: 60 });
    expect(loadConfig({ AUDIT_ANCHOR_EVERY_EVENTS: '10', AUDIT_ANCHOR_INTERVAL_SECONDS: '5' })).toMatchObject({
      AUDIT_ANCHOR_EVERY_EVENTS: 10,
      AUDIT_ANCHOR_INTERVAL_SECONDS: 5,
    });
    expect(() => loadConfig({ AUDIT_ANCHOR_EVERY_EVENTS: '0' })).toThrow('Invalid configuration: AUDIT_ANCHOR_EVERY_EVENTS must be at least 1');
    expect(() => loadConfig({ AUDIT_ANCHOR_INTERVAL_SECONDS: 'often' })).toThrow('Invalid configuration: AUDIT_ANCHOR_INTERVAL_SECONDS must be a number');
  });

  it('stops on a bad token lifetime or clock skew, naming the setting', () => {
    expect(() => loadConfig({ AUTH_MAX_TOKEN_LIFETIME_SECONDS: '10' })).toThrow('Invalid configuration: AUTH_MAX_TOKEN_LIFETIME_SECONDS must be at least 60');
    expect(() => loadConfig({ AUTH_MAX_TOKEN_LIFETIME_SECONDS: 'forever' })).toThrow('Invalid configuration: AUTH_MAX_TOKEN_LIFETIME_SECONDS must be a number');
    expect(() => loadConfig({ AUTH_CLOCK_SKEW_SECONDS: '-1' })).toThrow('Invalid configuration: AUTH_CLOCK_SKEW_SECONDS must not be negative');
    expect(() => loadConfig({ AUTH_CLOCK_SKEW_SECONDS: '3600' })).toThrow('Invalid configuration: AUTH_CLOCK_SKEW_SECONDS must be at most 600');
  });

  it('refuses both a JWKS file and a JWKS URL', () => {
    expect(() => loadConfig({ AUTH_JWKS_FILE: '/k.json', AUTH_JWKS_URL: 'https://idp/jwks' })).toThrow(/AUTH_JWKS_URL set either/);
  });
});

describe('HTTP settings', () => {
  it('derives PUBLIC_URL from HOST and PORT, allows no CORS origin and keeps idempotency keys a day by default', () => {
    expect(loadConfig({ HOST: '0.0.0.0', PORT: '8080' })).toMatchObject({
      PUBLIC_URL: 'http://localhost:8080',
      PUBLIC_URL_CONFIGURED: false,
      CORS_ALLOWED_ORIGINS: [],
      IDEMPOTENCY_KEY_TTL_SECONDS: 86_400,
    });
  });

  it('takes a configured PUBLIC_URL without its trailing slash and a comma list of origins', () => {
    expect(
      loadConfig({
        PUBLIC_URL: 'https://esoz.example.gov.ua/registry/',
        CORS_ALLOWED_ORIGINS: 'https://a.example.com, http://b.example.com:8080',
        IDEMPOTENCY_KEY_TTL_SECONDS: '60',
      }),
    ).toMatchObject({
      PUBLIC_URL: 'https://esoz.example.gov.ua/registry',
      PUBLIC_URL_CONFIGURED: true,
      CORS_ALLOWED_ORIGINS: ['https://a.example.com', 'http://b.example.com:8080'],
      IDEMPOTENCY_KEY_TTL_SECONDS: 60,
    });
  });

  it.each([
    [{ PUBLIC_URL: 'ftp://x.example.com' }, /PUBLIC_URL must be an http\(s\) URL/],
    [{ PUBLIC_URL: 'https://x.example.com/?a=1' }, /PUBLIC_URL must not have a query or fragment/],
    [{ CORS_ALLOWED_ORIGINS: 'https://a.example.com/path' }, /CORS_ALLOWED_ORIGINS\.0 must be a comma list of origins/],
    [{ CORS_ALLOWED_ORIGINS: '*' }, /CORS_ALLOWED_ORIGINS\.0 must be a comma list of origins/],
    [{ IDEMPOTENCY_KEY_TTL_SECONDS: '0' }, /IDEMPOTENCY_KEY_TTL_SECONDS/],
  ])('refuses %j', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });
});

describe('reference data', () => {
  it('accepts the demo data', () => {
    const data = parseReferenceData(demo, 'demo');
    expect(data.legal_entities.find((le) => le.id === demo.legal_entities[0]!.id)?.type).toBe('PHARMACY');
    expect(data.legal_entities[0]!.version).toBe(1);
    expect(data.dictionaries.device_dispense_mark_in_error_reasons).toContain('incorrect_patient');
    expect(data.dictionaries.device_unit).toEqual({ piece: 'шт', pack: 'уп' });
  });

  it('rejects unknown keys, naming them', () => {
    const withTypo = { ...demo, legal_entitys: [] };
    expect(() => parseReferenceData(withTypo, 'file.json')).toThrow(ReferenceDataError);
    expect(() => parseReferenceData(withTypo, 'file.json')).toThrow('Invalid reference data in file.json: (root): unknown key(s) legal_entitys');
    const nested = { ...demo, parties: [{ ...demo.parties[0], taxid: '1' }] };
    expect(() => parseReferenceData(nested, 'f')).toThrow(/parties\.0: unknown key\(s\) taxid/);
  });
});
