/**
 * SecretStore on the status table: the job's licence is the item
 *
 *   pk=JOB#<job>  sk=SECRET#licence   kind "secret", value (the text), expiresAt (epoch seconds)
 *
 * in the job's own partition, so the per-job agent role (dynamodb:LeadingKeys = JOB#<job>, see
 * infra/gq.yaml) reads it and no other job's instance can. `expiresAt` is the table's TTL
 * attribute: DynamoDB deletes the item some time after it (typically within a few days, see
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html), and
 * since an expired item may still be read until then, a read here ignores it once expired.
 * The table is encrypted at rest (SSE with KMS, infra/gq.yaml); an item is at most 400 KB,
 * far above a licence (submit accepts 64 KiB).
 */
import { DeleteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SecretStore } from '../ports.js';
import { jobPk } from './status-store/index.js';

export const LICENCE_SK = 'SECRET#licence';

export class DynamoSecretStore implements SecretStore {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly opts: { table: string; now?: () => number },
  ) {}

  private key(job: string) {
    return { pk: jobPk(job), sk: LICENCE_SK };
  }

  async putLicence(job: string, text: string, expiresAt: number): Promise<void> {
    await this.ddb.send(
      new PutCommand({ TableName: this.opts.table, Item: { ...this.key(job), kind: 'secret', value: text, expiresAt: Math.floor(expiresAt) } }),
    );
  }

  async getLicence(job: string): Promise<string | undefined> {
    const out = await this.ddb.send(new GetCommand({ TableName: this.opts.table, Key: this.key(job), ConsistentRead: true }));
    const item = out.Item as { value?: unknown; expiresAt?: unknown } | undefined;
    if (!item || typeof item.value !== 'string') return undefined;
    const now = (this.opts.now ?? Date.now)() / 1000;
    if (typeof item.expiresAt === 'number' && item.expiresAt <= now) return undefined;
    return item.value;
  }

  async deleteLicence(job: string): Promise<void> {
    await this.ddb.send(new DeleteCommand({ TableName: this.opts.table, Key: this.key(job) }));
  }
}
