/**
 * docker-compose.yml validates (`docker-compose config`, Debian's docker-compose package: no engine
 * needed; .ci/run installs it) and keeps the production promises: the app restarts and has an init,
 * PostgreSQL's healthcheck goes over TCP to the app's database, EventStoreDB is ready only when it
 * accepts an append and states its platform, and the `cluster` profile adds three EventStoreDB nodes
 * and a three-member MongoDB replica set. Without the binary: one `skipped:` line.
 */
import { describe, expect, it } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { reportSkipped } from '../support/databases.js';

const binary = spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0;
if (!binary) reportSkipped('docker-compose.yml validation: no docker-compose binary (apt-get install docker-compose)');

const compose = (...args: string[]) =>
  execFileSync('docker-compose', ['-f', 'docker-compose.yml', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
/** The block of one service in the resolved config (2-space YAML from docker-compose config). */
const serviceBlock = (config: string, name: string) => {
  const match = new RegExp(`\\n  ${name.replace(/[-]/g, '\\-')}:\\n((?:    .*\\n|\\s*\\n)*)`).exec(config);
  if (!match) throw new Error(`no service ${name} in:\n${config}`);
  return match[1]!;
};

(binary ? describe : describe.skip)('docker-compose.yml', () => {
  it('validates, with and without the cluster profile', () => {
    expect(() => compose('config', '-q')).not.toThrow();
    expect(() => compose('--profile', 'production', 'config', '-q')).not.toThrow();
    const config = compose('--profile', 'cluster', 'config');
    const services = compose('--profile', 'cluster', 'config', '--services').trim().split('\n');
    const inCluster = services.filter((name) => /\n    profiles:\n    - cluster\n/.test(serviceBlock(config, name)));
    expect(inCluster.sort()).toEqual(['app-cluster', 'esdb1', 'esdb2', 'esdb3', 'mongo1', 'mongo2', 'mongo3']);
    // docker-compose 1.29 lists every profile's services here: the production one is told apart the same way.
    const inProduction = services.filter((name) => /\n    profiles:\n    - production\n/.test(serviceBlock(config, name)));
    expect(inProduction).toEqual(['app-production']);
    expect(services.filter((name) => !inCluster.includes(name) && !inProduction.includes(name)).sort()).toEqual(['app', 'eventstore', 'mongo', 'postgres']);
  });

  it('keeps the production promises in the resolved configuration', () => {
    const config = compose('--profile', 'cluster', 'config');
    const app = serviceBlock(config, 'app');
    expect(app).toMatch(/\n    restart: (unless-stopped|on-failure|always)\n/);
    expect(app).toMatch(/\n    init: true\n/);
    expect(serviceBlock(config, 'postgres')).toMatch(/pg_isready -h 127\.0\.0\.1 -p 5432 -U postgres -d esoz/);
    for (const node of ['eventstore', 'esdb1', 'esdb2', 'esdb3']) {
      const block = serviceBlock(config, node);
      expect(block).toMatch(/platform: linux\/amd64|image: .*kurrent/);
      expect(block).toMatch(/-X POST[\s\S]*\/streams\//); // ready = an append went through, not /health/live
      expect(block).not.toMatch(/health\/live/);
    }
    for (const member of ['mongo1', 'mongo2', 'mongo3']) expect(serviceBlock(config, member)).toMatch(/--replSet[\s\S]*rs0/);
    expect(serviceBlock(config, 'mongo3')).toMatch(/rs\.initiate/);
    const clusterApp = serviceBlock(config, 'app-cluster');
    expect(clusterApp).toMatch(/EVENTSTORE_URL: esdb\+discover:\/\/esdb1:2113,esdb2:2113,esdb3:2113/);
    expect(clusterApp).toMatch(/MONGO_URL: mongodb:\/\/mongo1:27017,mongo2:27017,mongo3:27017\/esoz\?replicaSet=rs0/);
  });

  it('runs the demo apps in development mode and app-production in production mode on secret files', () => {
    const config = compose('--profile', 'cluster', '--profile', 'production', 'config');
    for (const name of ['app', 'app-cluster']) expect(serviceBlock(config, name)).toMatch(/\n      NODE_ENV: development\n/);
    const production = serviceBlock(config, 'app-production');
    expect(production).toMatch(/\n    profiles:\n    - production\n/);
    expect(production).toMatch(/\n      NODE_ENV: production\n/);
    for (const [setting, secret] of [
      ['AUTH_JWKS_FILE', 'auth_jwks'],
      ['DS_TRUSTED_CA_FILE', 'ds_trusted_ca'],
      ['AUDIT_ANCHOR_KEY_FILE', 'audit_anchor_key'],
    ]) {
      expect(production).toMatch(new RegExp(`\\n      ${setting}: /run/secrets/${secret}\\n`));
      expect(production).toMatch(new RegExp(`\\n    - source: ${secret}\\n`));
    }
    expect(production).toMatch(/\n      AUDIT_WITNESS_FILE: \/witness\/anchors\.jsonl\n/);
    expect(production).toMatch(/\n    - audit-witness:\/witness/);
    expect(production).toMatch(/\n      DATABASE_URL: postgres:\/\//);
  });

  it('the raw file names no EventStoreDB URL scheme the client refuses', () => {
    expect(readFileSync('docker-compose.yml', 'utf8')).not.toMatch(/kurrentdb:\/\/|kdb:\/\//);
  });
});
