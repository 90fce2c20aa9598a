/**
 * The agent that instances run: the single-file bundle built with this gq (same version), stored
 * once in the bucket under its content hash and fetched by UserData with the instance role.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { UserError, type ArtifactStore } from '@gq/common';

export interface AgentBundle {
  key: string;
  sha256: string;
  version: string;
}

export function localAgentBundle(): { file: string; sha256: string; version: string } {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('@gq/agent/package.json')), 'dist-bundle');
  const manifest = join(dir, 'manifest.json');
  const file = join(dir, 'gq-agent.mjs');
  if (!existsSync(manifest) || !existsSync(file)) {
    throw new UserError('The agent bundle for EC2 has not been built.', { hint: 'Run `npm run build` (npm ci does it) in the gq folder.' });
  }
  const m = JSON.parse(readFileSync(manifest, 'utf8')) as { sha256: string; version: string };
  return { file, sha256: m.sha256, version: m.version };
}

export async function ensureAgentUploaded(artifacts: ArtifactStore): Promise<AgentBundle> {
  const b = localAgentBundle();
  const key = `agent/${b.version}/gq-agent-${b.sha256.slice(0, 16)}.mjs`;
  if (!(await artifacts.exists(key))) await artifacts.putFile(key, b.file);
  return { key, sha256: b.sha256, version: b.version };
}
