import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UserError, type ArtifactStore } from '@gq/common';
import { ensureNodeUploaded, nodeBuildFor, nodeManifestKey, shaFromShasums } from '../src/aws/node-dist.js';
import { startNodeMirror } from '../../../test/support/node-mirror.mjs';

/** The bucket, in memory. */
function memoryStore(): ArtifactStore & { objects: Map<string, Buffer> } {
  const objects = new Map<string, Buffer>();
  return {
    objects,
    exists: async (k) => objects.has(k),
    putFile: async (k, f) => void objects.set(k, readFileSync(f)),
    putBytes: async (k, b) => void objects.set(k, Buffer.from(b)),
    getBytes: async (k) => {
      const v = objects.get(k);
      if (!v) throw new Error(`no ${k}`);
      return v;
    },
    getFile: async () => undefined,
    list: async () => [...objects.keys()].sort(),
    deletePrefix: async () => undefined,
  };
}

const V = 'v22.20.0';

describe('the instances\' Node.js in the bucket', () => {
  it('reads a SHASUMS256.txt line for exactly that file', () => {
    const sums = `${'a'.repeat(64)}  node-${V}-linux-x64.tar.xz\n${'b'.repeat(64)}  node-${V}-linux-x64.tar.gz\n`;
    expect(shaFromShasums(sums, `node-${V}-linux-x64.tar.gz`)).toBe('b'.repeat(64));
    expect(shaFromShasums(sums, `node-${V}-linux-arm64.tar.gz`)).toBeUndefined();
  });

  it('gq setup stores both architectures once, each checked against SHASUMS256.txt, the manifest last', async () => {
    const mirror = await startNodeMirror(V);
    const store = memoryStore();
    try {
      const first = await ensureNodeUploaded({ artifacts: store, version: V, mirror: mirror.url });
      expect(first.uploaded).toBe(true);
      expect(first.manifest.builds.x86_64).toEqual({ key: `node/${V}/node-${V}-linux-x64.tar.gz`, sha256: mirror.sha256.x64 });
      expect(first.manifest.builds.arm64.sha256).toBe(mirror.sha256.arm64);
      expect([...store.objects.keys()].pop()).toBe(nodeManifestKey(V));
      const served = mirror.requests.length;
      const again = await ensureNodeUploaded({ artifacts: store, version: V, mirror: mirror.url });
      expect(again.uploaded).toBe(false);
      expect(mirror.requests).toHaveLength(served); // nothing downloaded the second time
      expect(await nodeBuildFor(store, V, 'arm64')).toEqual(first.manifest.builds.arm64);
    } finally {
      await mirror.close();
    }
  });

  it('refuses a tarball that does not match SHASUMS256.txt and stores no manifest', async () => {
    const mirror = await startNodeMirror(V, { tamper: true });
    const store = memoryStore();
    try {
      await expect(ensureNodeUploaded({ artifacts: store, version: V, mirror: mirror.url })).rejects.toThrow(/does not match SHASUMS256.txt/);
      expect(store.objects.has(nodeManifestKey(V))).toBe(false);
      await expect(ensureNodeUploaded({ artifacts: store, version: V, mirror: `${mirror.url}/nope` })).rejects.toThrow(UserError);
    } finally {
      await mirror.close();
    }
  });

  it('submit says to run gq setup when the bucket has no build', async () => {
    await expect(nodeBuildFor(memoryStore(), V, 'x86_64')).rejects.toMatchObject({ hint: expect.stringMatching(/gq setup/) });
  });
});
