/**
 * Production mode's configuration (src/productionMode.ts through loadConfig): one line naming every
 * missing setting and every look-alike variable; development (anything but NODE_ENV=production, the
 * tests' NODE_ENV=test included) parses as before; the witness settings are validated.
 */
import { describe, expect, it } from '@jest/globals';
import { KNOWN_SETTINGS, loadConfig } from '../../src/config.js';
import { editDistance, lookalikeVariables } from '../../src/productionMode.js';

const complete = {
  NODE_ENV: 'production',
  AUTH_JWKS_FILE: '/run/secrets/jwks.json',
  DS_TRUSTED_CA_FILE: '/run/secrets/ca.pem',
  AUDIT_ANCHOR_KEY_FILE: '/run/secrets/anchor.jwk.json',
  AUDIT_WITNESS_FILE: '/witness/anchors.jsonl',
  DATABASE_URL: 'postgres://esoz@db/esoz',
};

describe('production mode (NODE_ENV=production)', () => {
  it('names every missing setting in one line', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(
      new Error(
        'Invalid configuration for production (NODE_ENV=production): AUTH_JWKS_FILE or AUTH_JWKS_URL is required (the access-token keys); ' +
          'DS_TRUSTED_CA_FILE is required (the signature trust store); AUDIT_ANCHOR_KEY_FILE is required (the anchor signing key); ' +
          'AUDIT_WITNESS_URL or AUDIT_WITNESS_FILE is required (the anchor witness); ' +
          'DATABASE_URL is required (a PostgreSQL database, not the embedded PGlite)',
      ),
    );
  });

  it('accepts a complete configuration, with a witness file or URL, on PostgreSQL or EventStoreDB', () => {
    expect(loadConfig(complete)).toMatchObject({ PRODUCTION: true, EVENT_STORE: 'postgres', AUDIT_WITNESS_FILE: '/witness/anchors.jsonl' });
    const { AUDIT_WITNESS_FILE: _file, ...withoutFile } = complete;
    expect(loadConfig({ ...withoutFile, AUDIT_WITNESS_URL: 'https://witness.example/anchors' }).AUDIT_WITNESS_URL).toBe('https://witness.example/anchors');
    expect(loadConfig({ ...complete, EVENT_STORE: 'eventstoredb', EVENTSTORE_URL: 'esdb://es:2113' }).EVENT_STORE).toBe('eventstoredb');
  });

  it('refuses the embedded store, and names schema errors and production problems together', () => {
    const { DATABASE_URL: _url, ...withoutDatabase } = complete;
    expect(() => loadConfig({ ...withoutDatabase, EVENT_STORE: 'pglite', PORT: 'eighty' })).toThrow(
      new Error(
        'Invalid configuration for production (NODE_ENV=production): PORT must be a port number; ' +
          'EVENT_STORE must be postgres or eventstoredb (not the embedded pglite); DATABASE_URL is required (a PostgreSQL database, not the embedded PGlite)',
      ),
    );
  });

  it('refuses look-alike variables: a typo of a setting and an unknown name with our prefix', () => {
    expect(() => loadConfig({ ...complete, DATABSE_URL: 'postgres://x@y/z', AUTH_JWKS_PATH: '/x', database_url: 'postgres://x@y/z' })).toThrow(
      new Error(
        "Invalid configuration for production (NODE_ENV=production): AUTH_JWKS_PATH is not a setting (AUTH_ is this service's prefix; see the README's Settings); " +
          'DATABSE_URL is not a setting (did you mean DATABASE_URL?); database_url is not a setting (did you mean DATABASE_URL?)',
      ),
    );
  });
});

describe('the witness settings', () => {
  it('are optional and validated in development', () => {
    expect(loadConfig({}).AUDIT_WITNESS_URL).toBeUndefined();
    expect(() => loadConfig({ AUDIT_WITNESS_URL: 'ftp://witness' })).toThrow('Invalid configuration: AUDIT_WITNESS_URL must start with https?://');
    expect(loadConfig({ AUDIT_WITNESS_FILE: ' /w/anchors ' }).AUDIT_WITNESS_FILE).toBe('/w/anchors');
  });
});

describe('development mode', () => {
  it('is anything but production: NODE_ENV=test (jest), development or unset parse as before', () => {
    for (const NODE_ENV of ['test', 'development', undefined]) expect(loadConfig(NODE_ENV ? { NODE_ENV } : {}).PRODUCTION).toBe(false);
    // Look-alikes are only warned about there (main.ts), not refused.
    expect(loadConfig({ NODE_ENV: 'development', DATABSE_URL: 'postgres://x@y/z' }).EVENT_STORE).toBe('pglite');
  });
});

describe('look-alike detection', () => {
  it('leaves jest, npm, CI and system variables alone, and this very environment', () => {
    const env = {
      NODE_ENV: 'test',
      JEST_WORKER_ID: '1',
      npm_config_loglevel: 'silent',
      npm_lifecycle_event: 'test',
      npm_package_name: 'x',
      EVENT_MANAGER_URL: 'http://em',
      HOSTNAME: 'ci',
      HOME: '/root',
      PATH: '/bin',
      INIT_CWD: '/work',
      NODE_OPTIONS: '--experimental-vm-modules',
      PGPASSWORD: 'x',
      DEBIAN_FRONTEND: 'noninteractive',
      FORCE_COLOR: '1',
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      TMPDIR: '/tmp',
    };
    expect(lookalikeVariables(env, KNOWN_SETTINGS)).toEqual([]);
    expect(lookalikeVariables(process.env, KNOWN_SETTINGS)).toEqual([]);
  });

  it('counts an edit as an insertion, deletion, substitution or swap of neighbours', () => {
    expect(editDistance('DATABSE_URL', 'DATABASE_URL')).toBe(1);
    expect(editDistance('DATBAASE_URL', 'DATABASE_URL')).toBe(1); // a swap is one edit
    expect(editDistance('LOG_LEVLE', 'LOG_LEVEL')).toBe(1);
    expect(editDistance('DTA_DIRR', 'DATA_DIR')).toBe(2);
    expect(lookalikeVariables({ DTA_DIRR: '/d', PROT: '1', HOTS: 'x' }, KNOWN_SETTINGS).map((found) => found.name)).toEqual(['DTA_DIRR']);
  });
});
