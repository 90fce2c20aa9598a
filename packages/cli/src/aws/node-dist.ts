/**
 * The Node.js build that instances run when their image has no node of the pinned major version.
 * `gq setup` downloads it once, on the user's machine, from nodejs.org (or the configured mirror,
 * same layout: <mirror>/<version>/SHASUMS256.txt and node-<version>-linux-<arch>.tar.gz), checks
 * each tarball against SHASUMS256.txt, and stores both architectures in the account's gq bucket
 * with a manifest written last (its presence means the upload is complete). Instances then fetch
 * it from the bucket with their role (no internet needed) and check the sha256 again
 * (packages/cli/src/userdata.ts). .tar.gz, not .tar.xz: gzip is in every supported image.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UserError, type ArtifactStore } from '@gq/common';

/** nodejs.org's names of the two architectures gq runs on (EC2: x86_64, arm64). */
export const NODE_ARCHES = { x86_64: 'x64', arm64: 'arm64' } as const;
export type Ec2Arch = keyof typeof NODE_ARCHES;

export interface NodeBuild {
  key: string;
  sha256: string;
}

export interface NodeManifest {
  version: string;
  /** Where it was downloaded from. */
  source: string;
  builds: Record<Ec2Arch, NodeBuild>;
}

export const nodeManifestKey = (version: string) => `node/${version}/manifest.json`;
export const nodeTarballName = (version: string, arch: string) => `node-${version}-linux-${arch}.tar.gz`;

/** The sha256 of `name` in a SHASUMS256.txt ("<hex>  <name>" lines). */
export function shaFromShasums(text: string, name: string): string | undefined {
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *]?(\S+)$/.exec(line.trim());
    if (m && m[2] === name) return m[1];
  }
  return undefined;
}

async function readManifest(artifacts: ArtifactStore, version: string): Promise<NodeManifest | undefined> {
  if (!(await artifacts.exists(nodeManifestKey(version)))) return undefined;
  return JSON.parse((await artifacts.getBytes(nodeManifestKey(version))).toString('utf8')) as NodeManifest;
}

async function download(url: string, file: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(600_000) });
  } catch (e) {
    throw new UserError(`Could not download ${url}: ${(e as Error).message}.`, {
      hint: 'gq setup needs to reach nodejs.org once (or set --node-mirror / GQ_NODE_MIRROR to a mirror).',
    });
  }
  if (!res.ok || !res.body) throw new UserError(`Could not download ${url}: HTTP ${res.status}.`, { hint: 'Check --node-mirror (GQ_NODE_MIRROR).' });
  const hash = createHash('sha256');
  await pipeline(
    Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
    async function* (source) {
      for await (const chunk of source) {
        hash.update(chunk as Buffer);
        yield chunk;
      }
    },
    createWriteStream(file),
  );
  return hash.digest('hex');
}

/**
 * Make sure the bucket holds `version` for both architectures (once per account and version).
 * Returns the manifest and whether this call uploaded it.
 */
export async function ensureNodeUploaded(o: {
  artifacts: ArtifactStore;
  version: string;
  mirror: string;
  onProgress?: (line: string) => void;
}): Promise<{ manifest: NodeManifest; uploaded: boolean }> {
  const existing = await readManifest(o.artifacts, o.version);
  if (existing) return { manifest: existing, uploaded: false };
  const base = `${o.mirror.replace(/\/+$/, '')}/${o.version}`;
  const dir = mkdtempSync(join(tmpdir(), 'gq-node-'));
  try {
    const sumsFile = join(dir, 'SHASUMS256.txt');
    await download(`${base}/SHASUMS256.txt`, sumsFile);
    const sums = readFileSync(sumsFile, 'utf8');
    const builds = {} as Record<Ec2Arch, NodeBuild>;
    for (const [ec2Arch, arch] of Object.entries(NODE_ARCHES) as Array<[Ec2Arch, string]>) {
      const name = nodeTarballName(o.version, arch);
      const want = shaFromShasums(sums, name);
      if (!want) throw new UserError(`${base}/SHASUMS256.txt lists no ${name}.`, { hint: 'Check --node-mirror (GQ_NODE_MIRROR).' });
      o.onProgress?.(`Node.js ${o.version} (${arch}): downloading ${base}/${name}`);
      const file = join(dir, name);
      const got = await download(`${base}/${name}`, file);
      if (got !== want) {
        throw new UserError(`${base}/${name} does not match SHASUMS256.txt (sha256 ${got}, expected ${want}); nothing was uploaded.`, {
          hint: 'Try again; if it persists, the mirror serves a corrupt or altered file.',
        });
      }
      const key = `node/${o.version}/${name}`;
      await o.artifacts.putFile(key, file);
      builds[ec2Arch] = { key, sha256: want };
      rmSync(file, { force: true });
    }
    const manifest: NodeManifest = { version: o.version, source: base, builds };
    await o.artifacts.putBytes(nodeManifestKey(o.version), JSON.stringify(manifest, null, 2));
    return { manifest, uploaded: true };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The build an instance of this architecture fetches; a clear error when `gq setup` has not stored it. */
export async function nodeBuildFor(artifacts: ArtifactStore, version: string, arch: Ec2Arch): Promise<NodeBuild> {
  const m = await readManifest(artifacts, version);
  const build = m?.builds?.[arch];
  if (!build || !/^[0-9a-f]{64}$/.test(build.sha256)) {
    throw new UserError(`The gq bucket holds no Node.js ${version} build for the instances.`, {
      hint: 'Run `gq setup` (it stores the pinned Node.js build in the bucket once).',
    });
  }
  return build;
}
