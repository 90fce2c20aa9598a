/**
 * DynamoDB contention, emulated: moto (serialised by the harness) never cancels a transaction for
 * a conflict nor throttles a hot item; DynamoDB does both. This model decides, per request, what
 * DynamoDB would answer under contention; the strict layer (proxy.ts) asks it before forwarding.
 * Pure: time comes from `now()`.
 *
 * The model, per item (table + key):
 *  - **In flight**: a TransactWriteItems holds each of its items for `windowMs` from its arrival
 *    (DynamoDB's prepare and commit of a transaction take about that long), and is answered no
 *    sooner than that (the layer holds moto's answer back), so a client never sees its own
 *    finished transaction conflict with its next request. The time a request waits for moto (which
 *    serialises DynamoDB) is not held: DynamoDB has no such queue. Meanwhile, on the same item,
 *    another TransactWriteItems is cancelled (TransactionCanceledException, reason
 *    `TransactionConflict` on that action, `None` on the others), and a PutItem / UpdateItem /
 *    DeleteItem fails with TransactionConflictException. Single-item writes do not hold an item:
 *    DynamoDB serialises them on the item, and documents conflicts only with transactions.
 *    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
 *    ("Transaction conflict handling in DynamoDB").
 *  - **Throughput**: an item takes at most `itemWritesPerSecond` write units in any second
 *    (sliding 1 s window): a single-item write costs 1, an action of a transaction 2 (DynamoDB
 *    writes each item of a transaction twice, prepare and commit); items are taken as ≤ 1 KB. A
 *    write over the limit changes nothing: a single-item write fails with ThrottlingException
 *    (reason TableWriteKeyRangeThroughputExceeded), a transaction is cancelled with reason
 *    `ThrottlingError` on the hot item. An item lives in one partition, and a partition takes at
 *    most 1,000 WCU/s, so 1,000 is the documented ceiling for one item.
 *    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html
 *    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/throttling-key-range-limit-exceeded-mitigation.html
 *    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html (reason codes)
 *
 * A request refused by the model is not forwarded (it changed nothing, as on DynamoDB) and does
 * not hold or spend anything. Reads, queries and BatchWriteItem pass untouched.
 */
import { randomUUID } from 'node:crypto';

export interface ContentionOptions {
  /** How long a transaction holds its items; 0 = no conflicts. */
  windowMs?: number;
  /** Write units an item takes per second; 0 or undefined = no throttling. */
  itemWritesPerSecond?: number;
  now?: () => number;
}

export interface ContentionStats {
  /** Requests seen by the model (writes only). */
  writes: number;
  /** Transactions cancelled for a conflict, and single writes refused for one. */
  conflicts: number;
  /** Writes refused for throughput (transactions and single writes). */
  throttles: number;
}

/** A forwarded transaction's hold on its items: answer it no sooner than `until`. */
export interface ContentionHold {
  readonly ids: readonly string[];
  readonly until: number;
}

/** What the model says of one request: an answer instead of forwarding, or a hold to finish. */
export type ContentionVerdict = { answer: ContentionAnswer; hold?: undefined } | { answer?: undefined; hold: ContentionHold };

/** What the layer answers instead of forwarding. */
export interface ContentionAnswer {
  kind: 'conflict' | 'throttle';
  status: number;
  headers: Record<string, string>;
  body: string;
}

type Body = Record<string, unknown>;
type Item = Record<string, unknown>;

const WINDOW_S = 1000;
const ENV_WINDOW = 'GQ_CONTENTION_WINDOW_MS';
const ENV_RATE = 'GQ_ITEM_WRITES_PER_S';

/** The model's parameters from the environment (GQ_CONTENTION_WINDOW_MS, GQ_ITEM_WRITES_PER_S); undefined when neither is set. */
export function contentionFromEnv(env: NodeJS.ProcessEnv = process.env): ContentionOptions | undefined {
  const num = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number ≥ 0, not "${raw}"`);
    return n;
  };
  const windowMs = num(ENV_WINDOW);
  const itemWritesPerSecond = num(ENV_RATE);
  if (windowMs === undefined && itemWritesPerSecond === undefined) return undefined;
  return { windowMs, itemWritesPerSecond };
}

const json = (type: string, body: Record<string, unknown>, status = 400): Omit<ContentionAnswer, 'kind'> => ({
  status,
  headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': randomUUID() },
  body: JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, ...body }),
});

const THROTTLE_MESSAGE = 'Throughput exceeds the current capacity for one or more items. Please retry the request.';

export class ContentionModel {
  readonly stats: ContentionStats = { writes: 0, conflicts: 0, throttles: 0 };
  private readonly windowMs: number;
  private readonly rate: number;
  private readonly now: () => number;
  /** item → held until (epoch ms). */
  private readonly held = new Map<string, number>();
  /** item → [time, units] of the last second. */
  private readonly spent = new Map<string, Array<[number, number]>>();
  private sweptAt = 0;

  constructor(o: ContentionOptions = {}) {
    this.windowMs = Math.max(0, o.windowMs ?? 0);
    this.rate = Math.max(0, o.itemWritesPerSecond ?? 0);
    this.now = o.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.windowMs > 0 || this.rate > 0;
  }

  /**
   * What DynamoDB would answer to this request under contention, or undefined to forward it
   * (then its items are held and its units spent). `keyAttributes` names a table's key attributes
   * (needed for a Put, whose key is inside its Item).
   */
  check(operation: string, body: Body, keyAttributes: (table: string) => readonly string[] | undefined): ContentionVerdict | undefined {
    if (!this.enabled) return undefined;
    const now = this.now();
    this.sweep(now);
    if (operation === 'TransactWriteItems') return this.transaction(body, keyAttributes, now);
    if (operation === 'PutItem' || operation === 'UpdateItem' || operation === 'DeleteItem') {
      const answer = this.single(operation, body, keyAttributes, now);
      return answer && { answer };
    }
    return undefined;
  }

  private isHeld(id: string, now: number): boolean {
    return (this.held.get(id) ?? 0) > now;
  }

  private transaction(body: Body, keyAttributes: (table: string) => readonly string[] | undefined, now: number): ContentionVerdict {
    this.stats.writes++;
    const actions = (body.TransactItems as Array<Record<string, Body>> | undefined) ?? [];
    const ids = actions.map((a) => {
      const [kind, op] = Object.entries(a)[0] ?? [];
      return kind && op ? itemId(kind, op, keyAttributes) : undefined;
    });
    const reasons = ids.map((id): string => {
      if (id === undefined) return 'None';
      if (this.isHeld(id, now)) return 'TransactionConflict';
      if (this.rate > 0 && this.units(id, now) + 2 > this.rate) return 'ThrottlingError';
      return 'None';
    });
    if (reasons.every((r) => r === 'None')) {
      const mine = ids.filter((id): id is string => id !== undefined);
      const until = now + this.windowMs;
      for (const id of mine) {
        if (this.windowMs > 0) this.held.set(id, until);
        this.spend(id, now, 2);
      }
      return { hold: { ids: mine, until } };
    }
    const conflict = reasons.includes('TransactionConflict');
    if (conflict) this.stats.conflicts++;
    else this.stats.throttles++;
    const message = `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.join(', ')}]`;
    return {
      answer: {
      kind: conflict ? 'conflict' : 'throttle',
      ...json('TransactionCanceledException', {
        message,
        CancellationReasons: reasons.map((r) =>
          r === 'None'
            ? { Code: 'None' }
            : { Code: r, Message: r === 'TransactionConflict' ? 'Transaction is ongoing for the item' : THROTTLE_MESSAGE },
        ),
      }),
      },
    };
  }

  private single(operation: string, body: Body, keyAttributes: (table: string) => readonly string[] | undefined, now: number): ContentionAnswer | undefined {
    this.stats.writes++;
    const id = itemId(operation, body, keyAttributes);
    if (id === undefined) return undefined;
    if (this.isHeld(id, now)) {
      this.stats.conflicts++;
      return { kind: 'conflict', ...json('TransactionConflictException', { message: 'Transaction is ongoing for the item' }) };
    }
    if (this.rate > 0 && this.units(id, now) + 1 > this.rate) {
      this.stats.throttles++;
      return {
        kind: 'throttle',
        ...json('ThrottlingException', {
          message: THROTTLE_MESSAGE,
          ThrottlingReasons: [{ reason: 'TableWriteKeyRangeThroughputExceeded', resource: String(body.TableName ?? '') }],
        }),
      };
    }
    this.spend(id, now, 1);
    return undefined;
  }

  private units(id: string, now: number): number {
    const list = this.spent.get(id);
    if (!list) return 0;
    while (list.length > 0 && list[0]![0] <= now - WINDOW_S) list.shift();
    return list.reduce((n, [, u]) => n + u, 0);
  }

  private spend(id: string, now: number, units: number): void {
    if (this.rate <= 0) return;
    let list = this.spent.get(id);
    if (!list) this.spent.set(id, (list = []));
    list.push([now, units]);
  }

  /** Forget what no longer matters (at most once a second), so that memory stays bounded. */
  private sweep(now: number): void {
    if (now - this.sweptAt < WINDOW_S) return;
    this.sweptAt = now;
    for (const [id, until] of this.held) if (until <= now) this.held.delete(id);
    for (const [id, list] of this.spent) if (list.length === 0 || list[list.length - 1]![0] <= now - WINDOW_S) this.spent.delete(id);
  }
}

/** The item a write action targets: table + its key attributes (sorted), or undefined when unknown. */
function itemId(kind: string, op: Body, keyAttributes: (table: string) => readonly string[] | undefined): string | undefined {
  const table = typeof op.TableName === 'string' ? op.TableName : undefined;
  if (!table) return undefined;
  let key: Item | undefined;
  if (kind === 'Put' || kind === 'PutItem') {
    const item = op.Item as Item | undefined;
    const attrs = keyAttributes(table);
    if (!item || !attrs) return undefined;
    key = Object.fromEntries(attrs.map((a) => [a, item[a]]));
  } else {
    key = op.Key as Item | undefined;
  }
  if (!key) return undefined;
  return JSON.stringify([table, Object.entries(key).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
}
