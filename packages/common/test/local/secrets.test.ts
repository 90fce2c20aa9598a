/** The local backend's licence store: owner-only file, expiry honoured, delete idempotent. */
import { statSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore, LocalSecretStore } from '../../src/local/index.js';
import { tempHome } from './helpers.js';

describe('LocalSecretStore', () => {
  const t = tempHome('secrets');
  afterAll(() => t.remove());

  it('stores the licence owner-only with its expiry, refuses it once expired, deletes it', async () => {
    const home = t.home;
    const artifacts = new LocalArtifactStore(home);
    let now = 1_000_000_000_000;
    const store = new LocalSecretStore(artifacts, () => now);
    expect(await store.getLicence('j1')).toBeUndefined();
    await store.putLicence('j1', 'WLSSECRET=abc', now / 1000 + 60);
    expect(await store.getLicence('j1')).toBe('WLSSECRET=abc');
    expect(statSync(artifacts.pathOf('jobs/j1/secret/license')).mode & 0o777).toBe(0o600);
    now += 61_000;
    expect(await store.getLicence('j1')).toBeUndefined();
    await store.deleteLicence('j1');
    expect(await artifacts.exists('jobs/j1/secret/license')).toBe(false);
    await store.deleteLicence('j1');
  });
});
