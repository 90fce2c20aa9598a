/**
 * Test instrumentation: when GQ_TEST_AWS_CALL_LOG names a file, every AWS call this process
 * makes is appended to it as one JSON line (service, operation, region, and the request fields
 * that decide its IAM authorisation: queue, table and partition keys, bucket and object keys,
 * group, tags, role...). The policy-coverage test (test/aws-e2e.test.ts) evaluates each line
 * against the policies of infra/gq.yaml. The CLI and every agent subprocess append to the same
 * file; GQ_TEST_AWS_CALL_WHO (set by the test's instance runtime) says which instance made it.
 *
 * Never recorded: item attributes other than pk/sk, message bodies, object bodies, tag values
 * other than gq's job, type and pool tags. So the licence and task commands never reach the file.
 * Unset (every real run): nothing is installed and nothing is written.
 */
import { appendFileSync } from 'node:fs';
import type { MiddlewareStack } from '@smithy/types';
import { ENV } from '../env.js';

export const CALL_LOG_ENV = ENV.TEST_AWS_CALL_LOG;
export const CALL_WHO_ENV = ENV.TEST_AWS_CALL_WHO;

/** One recorded call. */
export interface CallRecord {
  service: string;
  operation: string;
  region?: string;
  /** GQ_TEST_AWS_CALL_WHO of the process (an instance's job and id), else "cli". */
  who: string;
  pid: number;
  /** The authorisation-relevant fields of the request (see recordFields). */
  fields: Record<string, unknown>;
}

type AnyRecord = Record<string, unknown>;
const isObj = (v: unknown): v is AnyRecord => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** pk of a DynamoDB key or item, in document-client (plain) or raw ({S: ...}) form. */
function pkOf(v: unknown): string | undefined {
  if (!isObj(v)) return undefined;
  const pk = v.pk;
  if (typeof pk === 'string') return pk;
  if (isObj(pk) && typeof pk.S === 'string') return pk.S;
  return undefined;
}

/** The partition key value a Query names in `pk = :x`. */
function queryPk(input: AnyRecord): string | undefined {
  const m = /\bpk\s*=\s*(:[A-Za-z0-9_]+)/.exec(str(input.KeyConditionExpression) ?? '');
  if (!m) return undefined;
  const values = input.ExpressionAttributeValues;
  if (!isObj(values)) return undefined;
  const v = values[m[1]!];
  return typeof v === 'string' ? v : isObj(v) && typeof v.S === 'string' ? v.S : undefined;
}

const KEPT_TAGS = new Set(['gq:job', 'gq:instance-type', 'gq:pool', 'gq-job', 'gq:stack']);
function tagsOf(v: unknown): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  const add = (k: unknown, val: unknown) => {
    if (typeof k !== 'string') return;
    out[k] = KEPT_TAGS.has(k) && typeof val === 'string' ? val : '';
  };
  if (Array.isArray(v)) for (const t of v) if (isObj(t)) add(t.Key, t.Value);
  if (isObj(v)) for (const [k, val] of Object.entries(v)) add(k, val);
  return Object.keys(out).length ? out : undefined;
}

/** The fields of a request that decide its authorisation (pure; nothing secret). */
export function recordFields(input: unknown): Record<string, unknown> {
  if (!isObj(input)) return {};
  const f: Record<string, unknown> = {};
  for (const k of [
    'QueueUrl',
    'QueueName',
    'TableName',
    'IndexName', // DynamoDB Query of an index: authorised on the index's ARN
    'Bucket',
    'Key',
    'Prefix',
    'AutoScalingGroupName',
    'InstanceId',
    'LaunchTemplateName',
    'LaunchTemplateId',
    'RoleName',
    'InstanceProfileName',
    'PolicyArn',
    'PermissionsBoundary',
    'Path',
    'StackName',
    'AWSServiceName',
    'Name', // SSM GetParameter: a parameter name (the AMI's), never its value
  ]) {
    const v = input[k];
    if (typeof v === 'string') f[k] = v;
  }
  // Auto Scaling SetInstanceProtection: on or off (tests check when an agent drops protection).
  if (typeof input.ProtectedFromScaleIn === 'boolean') f.ProtectedFromScaleIn = input.ProtectedFromScaleIn;
  // DynamoDB: the partition keys the request touches (dynamodb:LeadingKeys).
  const pks = new Set<string>();
  const addPk = (v: unknown) => {
    const pk = pkOf(v);
    if (pk) pks.add(pk);
  };
  if (isObj(input.Key) && 'pk' in input.Key) {
    addPk(input.Key);
    delete f.Key;
  }
  addPk(input.Item);
  const q = queryPk(input);
  if (q) pks.add(q);
  if (isObj(input.RequestItems)) {
    const tables: Record<string, string[]> = {};
    for (const [table, req] of Object.entries(input.RequestItems)) {
      const set = new Set<string>();
      const add = (v: unknown) => {
        const pk = pkOf(v);
        if (pk) set.add(pk);
      };
      if (isObj(req) && Array.isArray(req.Keys)) req.Keys.forEach(add);
      if (Array.isArray(req)) {
        for (const w of req) if (isObj(w)) add((w.PutRequest as AnyRecord | undefined)?.Item ?? (w.DeleteRequest as AnyRecord | undefined)?.Key);
      }
      tables[table] = [...set];
    }
    f.RequestItems = tables;
  }
  if (Array.isArray(input.TransactItems)) {
    f.TransactItems = input.TransactItems.filter(isObj).map((t) => {
      const [kind, body] = Object.entries(t)[0] ?? ['', {}];
      const b = isObj(body) ? body : {};
      return { kind, TableName: str(b.TableName), pk: pkOf(b.Key) ?? pkOf(b.Item) };
    });
  }
  if (pks.size) f.LeadingKeys = [...pks];
  // S3 DeleteObjects: the keys.
  if (isObj(input.Delete) && Array.isArray(input.Delete.Objects)) {
    f.DeleteKeys = input.Delete.Objects.filter(isObj).map((o) => str(o.Key)).filter(Boolean);
  }
  // EC2 CreateTags: the resources and tag keys.
  if (Array.isArray(input.Resources)) f.Resources = input.Resources.filter((r) => typeof r === 'string');
  const tags = tagsOf(input.Tags) ?? tagsOf(input.tags);
  if (tags) f.Tags = tags;
  if (Array.isArray(input.TagSpecifications)) {
    f.TagSpecifications = input.TagSpecifications.filter(isObj).map((t) => ({ ResourceType: str(t.ResourceType), Tags: tagsOf(t.Tags) ?? {} }));
  }
  if (isObj(input.LaunchTemplateData)) {
    const d = input.LaunchTemplateData;
    const ts = Array.isArray(d.TagSpecifications) ? d.TagSpecifications.filter(isObj) : [];
    f.LaunchTemplateData = {
      IamInstanceProfile: isObj(d.IamInstanceProfile) ? str(d.IamInstanceProfile.Arn) ?? str(d.IamInstanceProfile.Name) : undefined,
      TagSpecifications: ts.map((t) => ({ ResourceType: str(t.ResourceType), Tags: tagsOf(t.Tags) ?? {} })),
    };
  }
  // Auto Scaling: the launch template a group is created from.
  const lt = (input.LaunchTemplate ?? (isObj(input.MixedInstancesPolicy) ? (input.MixedInstancesPolicy.LaunchTemplate as AnyRecord)?.LaunchTemplateSpecification : undefined)) as
    | AnyRecord
    | undefined;
  if (isObj(lt)) f.LaunchTemplate = { LaunchTemplateName: str(lt.LaunchTemplateName), LaunchTemplateId: str(lt.LaunchTemplateId) };
  return f;
}

interface WithConfig {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  middlewareStack: MiddlewareStack<any, any>;
  config?: { region?: unknown };
}

const NAME = 'gqCallLog';

/**
 * Install the call log on an SDK client when GQ_TEST_AWS_CALL_LOG is set (no-op otherwise, and
 * when installed already).
 */
export function installCallLog(client: WithConfig, service: string): void {
  const file = process.env[CALL_LOG_ENV];
  if (!file) return;
  const stack = client.middlewareStack as MiddlewareStack<object, object> & { identify?: () => string[] };
  if (stack.identify?.().some((s) => s.startsWith(NAME))) return;
  stack.add(
    (next, context) => async (args) => {
      let region: string | undefined;
      try {
        const r = client.config?.region;
        region = typeof r === 'function' ? await (r as () => Promise<string>)() : typeof r === 'string' ? r : undefined;
      } catch {
        region = undefined;
      }
      const rec: CallRecord = {
        service,
        operation: (context.commandName ?? 'Unknown').replace(/Command$/, ''),
        region,
        who: process.env[CALL_WHO_ENV] || 'cli',
        pid: process.pid,
        fields: recordFields((args as { input?: unknown }).input),
      };
      appendFileSync(file, JSON.stringify(rec) + '\n');
      return next(args);
    },
    { step: 'initialize', name: NAME, priority: 'high' },
  );
}
