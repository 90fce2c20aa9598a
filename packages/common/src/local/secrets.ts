/**
 * SecretStore of the local backend: the licence in the artifact folder under
 * jobs/<job>/secret/ (owner-only file in an owner-only folder, see artifact-store.ts), as JSON with
 * its expiry, which a read honours like the AWS backend does.
 */
import type { SecretStore } from '../ports.js';
import { keys } from '../job/model.js';
import type { LocalArtifactStore } from './artifact-store.js';
import { ArtifactNotFoundError } from '../port-errors.js';

export class LocalSecretStore implements SecretStore {
  constructor(
    private readonly artifacts: LocalArtifactStore,
    private readonly now: () => number = Date.now,
  ) {}

  async putLicence(job: string, text: string, expiresAt: number): Promise<void> {
    await this.artifacts.putBytes(keys.license(job), JSON.stringify({ text, expiresAt: Math.floor(expiresAt) }));
  }

  async getLicence(job: string): Promise<string | undefined> {
    let raw: Buffer;
    try {
      raw = await this.artifacts.getBytes(keys.license(job));
    } catch (err) {
      if (err instanceof ArtifactNotFoundError) return undefined;
      throw err;
    }
    const v = JSON.parse(raw.toString('utf8')) as { text?: unknown; expiresAt?: unknown };
    if (typeof v.text !== 'string') return undefined;
    if (typeof v.expiresAt === 'number' && v.expiresAt <= this.now() / 1000) return undefined;
    return v.text;
  }

  async deleteLicence(job: string): Promise<void> {
    await this.artifacts.deletePrefix(`jobs/${job}/secret/`);
  }
}
