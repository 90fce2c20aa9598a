/**
 * The status table as the store uses it: consistent reads, every page of a Query, batches sent
 * again until DynamoDB has processed them all, the counter shards of each job seen, and the
 * settings every part of the store shares (`StoreContext`).
 */
import {
  BatchGetCommand,
  BatchWriteCommand,
  GetCommand,
  QueryCommand,
  type DynamoDBDocumentClient,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import pLimit from 'p-limit';
import { contentionPause } from './loop.js';
import { JOB_SK, jobPk, shardsOf, type Item } from './items.js';

/** A Query of the table, without the parts the table fills in. */
export type QueryInput = Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>;

/** BatchWriteItem takes at most 25 requests (API_BatchWriteItem.html). */
const BATCH_WRITE_MAX = 25;

export class Table {
  constructor(
    readonly ddb: DynamoDBDocumentClient,
    readonly name: string,
  ) {}

  async get(pk: string, sk: string): Promise<Item | undefined> {
    const out = await this.ddb.send(new GetCommand({ TableName: this.name, Key: { pk, sk }, ConsistentRead: true }));
    return out.Item;
  }

  /** One page of a Query (from `start`), and where the next one starts (undefined: none). */
  async queryPage(input: QueryInput, start?: Record<string, unknown>): Promise<{ items: Item[]; next?: Record<string, unknown> }> {
    const out = await this.ddb.send(new QueryCommand({ TableName: this.name, ...input, ExclusiveStartKey: start }));
    return { items: (out.Items ?? []) as Item[], next: out.LastEvaluatedKey };
  }

  /** Every page of a Query, in order: a LastEvaluatedKey means "ask again from there" (Query.Pagination.html). */
  async *queryPages(input: QueryInput): AsyncGenerator<Item[]> {
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.queryPage(input, start);
      yield page.items;
      start = page.next;
    } while (start);
  }

  /** Query every page. */
  async queryAll(input: QueryInput): Promise<Item[]> {
    const items: Item[] = [];
    for await (const page of this.queryPages(input)) items.push(...page);
    return items;
  }

  /** BatchGetItem (≤ 100 keys), consistent; unprocessed keys asked again. */
  async batchGet(keys: Array<{ pk: string; sk: string }>): Promise<Item[]> {
    const found: Item[] = [];
    let pending: Array<Record<string, unknown>> = keys;
    // Unprocessed keys are DynamoDB's throttling of a batch: asked again after a backoff, unbounded.
    for (let round = 0; pending.length > 0; round++) {
      if (round > 0) await contentionPause(round);
      const out = await this.ddb.send(new BatchGetCommand({ RequestItems: { [this.name]: { Keys: pending, ConsistentRead: true } } }));
      found.push(...((out.Responses?.[this.name] ?? []) as Item[]));
      pending = (out.UnprocessedKeys?.[this.name]?.Keys ?? []) as Array<Record<string, unknown>>;
    }
    return found;
  }

  /** BatchWriteItem (≤ 25 requests); unprocessed ones sent again. */
  private async batchWrite(requests: Array<Record<string, unknown>>): Promise<void> {
    let pending = requests;
    for (let round = 0; pending.length > 0; round++) {
      // Unprocessed items are DynamoDB's throttling of a batch: sent again after a backoff, unbounded.
      if (round > 0) await contentionPause(round);
      const out = await this.ddb.send(new BatchWriteCommand({ RequestItems: { [this.name]: pending } }));
      pending = (out.UnprocessedItems?.[this.name] ?? []) as Array<Record<string, unknown>>;
    }
  }

  /** Delete the items of `keys`, 25 a batch, `concurrency` batches at a time. */
  async deleteKeys(keys: readonly Item[], concurrency = 1): Promise<void> {
    const limit = pLimit(concurrency);
    const batches: Item[][] = [];
    for (let i = 0; i < keys.length; i += BATCH_WRITE_MAX) batches.push(keys.slice(i, i + BATCH_WRITE_MAX));
    await Promise.all(batches.map((b) => limit(() => this.batchWrite(b.map((k) => ({ DeleteRequest: { Key: { pk: k.pk, sk: k.sk } } }))))));
  }
}

/**
 * The counter shards of each job seen (see store.ts): a transition adds its delta to a shard
 * chosen at random, another one on each retry.
 */
export class CounterShards {
  /** Counter shards of each job (null: a job of an older gq, counters on the job item). */
  private readonly shards = new Map<string, number | null>();

  constructor(private readonly table: Table) {}

  /** Remember how a job keeps its counters (from its item). */
  note(job: string, item: Item | undefined): void {
    if (item) this.shards.set(job, shardsOf(item));
  }

  set(job: string, n: number): void {
    this.shards.set(job, n);
  }

  forget(job: string): void {
    this.shards.delete(job);
  }

  /** A counter shard of the job chosen at random (undefined: the job item; also for a job that is gone). */
  async pick(job: string): Promise<number | undefined> {
    if (!this.shards.has(job)) this.note(job, await this.table.get(jobPk(job), JOB_SK));
    const n = this.shards.get(job);
    return n ? Math.floor(Math.random() * n) : undefined;
  }
}

/** What every part of the store shares. */
export interface StoreContext {
  readonly table: Table;
  readonly shards: CounterShards;
  /** Clock (epoch ms). */
  readonly now: () => number;
  /** Parallel writes in createJob / cancel / resubmit / deleteJob. */
  readonly concurrency: number;
  /** Parallel task-creating transactions in createJob (and cancel / resubmit chunks). */
  readonly createConcurrency: number;
  /** Counter shards of the jobs this store creates. */
  readonly counterShards: number;
}
