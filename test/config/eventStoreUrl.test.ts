/**
 * EVENTSTORE_URL accepts exactly what @eventstore/db-client parses: a URL the settings accept must not
 * stop the server later at start, and one the client refuses must be refused with the other settings.
 */
import { describe, expect, it } from '@jest/globals';
import { EventStoreDBClient } from '@eventstore/db-client';
import { loadConfig } from '../../src/config.js';

const accepted = [
  'esdb://localhost:2113?tls=false',
  'esdb://admin:changeit@node1:2113,node2:2113,node3:2113?tls=true',
  'esdb+discover://cluster.example.com:2113',
];
const refused = [
  'kurrentdb://localhost:2113?tls=false',
  'kdb://localhost:2113',
  'kurrentdb+discover://cluster:2113',
  'http://localhost:2113',
  'tcp://localhost:1113',
];

const clientParses = (url: string): boolean => {
  try {
    void EventStoreDBClient.connectionString(url).dispose();
    return true;
  } catch {
    return false;
  }
};

describe('EVENTSTORE_URL', () => {
  it.each(accepted)('accepts %s, which the client parses', (url) => {
    expect(loadConfig({ EVENT_STORE: 'eventstoredb', EVENTSTORE_URL: url }).EVENTSTORE_URL).toBe(url);
    expect(clientParses(url)).toBe(true);
  });

  it.each(refused)('refuses %s, which the client refuses too', (url) => {
    expect(() => loadConfig({ EVENT_STORE: 'eventstoredb', EVENTSTORE_URL: url })).toThrow('EVENTSTORE_URL must start with esdb|esdb+discover://');
    expect(clientParses(url)).toBe(false);
  });

  it('ON_CHECKPOINT_AHEAD is fail unless set to rebuild', () => {
    expect(loadConfig({}).ON_CHECKPOINT_AHEAD).toBe('fail');
    expect(loadConfig({ ON_CHECKPOINT_AHEAD: 'rebuild' }).ON_CHECKPOINT_AHEAD).toBe('rebuild');
    expect(() => loadConfig({ ON_CHECKPOINT_AHEAD: 'skip' })).toThrow('ON_CHECKPOINT_AHEAD');
  });
});
