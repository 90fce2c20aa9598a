/**
 * moto for one test file: never real AWS.
 *
 *   const available = motoAvailable();                 // at collection time
 *   if (!available) warnSkipped('my.test.ts (what is skipped)');
 *   (available ? describe : describe.skip)('...', () => {
 *     let moto: Moto;
 *     beforeAll(async () => { moto = (await startMoto())!; await createSharedResources(moto.endpoint); });
 *     afterAll(async () => { await moto?.stop(); });
 *   });
 *
 * - AWS_ENDPOINT_URL set: that server is used as it is (e.g. one moto for a whole CI run), never
 *   stopped here; an amazonaws.com endpoint is refused. A plain moto_server lacks the fidelity
 *   fixes below, so the race tests may fail against it.
 * - else `moto_server` on PATH: started on a free port, behind the fidelity wrapper below; killed
 *   on stop(), on process exit, and even when this process dies by SIGKILL (a shell in between
 *   reads our stdin and kills moto at EOF).
 * - else undefined: the caller skips its tests, loudly (`warnSkipped`).
 *
 * In every case the SDK gets dummy credentials and us-east-1 through the environment, and no
 * profile or config file of the developer is read.
 * Also here: `resetMoto` (POST /moto-api/reset), `motoClients`, `createSharedResources` (the
 * table and the bucket as infra/gq.yaml makes them).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import {
  CreateBucketCommand,
  PutBucketEncryptionCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketOwnershipControlsCommand,
  PutPublicAccessBlockCommand,
} from '@aws-sdk/client-s3';
import { CreateTableCommand, DescribeTableCommand, ResourceInUseException, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { makeAwsClients, type AwsClientOptions, type AwsClients } from '../../packages/common/src/aws/clients.js';

export interface Moto {
  endpoint: string;
  /** True when this process started the server. */
  owned: boolean;
  stop(): Promise<void>;
}

const REGION = 'us-east-1';

function setSdkEnv(): void {
  process.env.AWS_ACCESS_KEY_ID = 'testing';
  process.env.AWS_SECRET_ACCESS_KEY = 'testing';
  process.env.AWS_SESSION_TOKEN = 'testing';
  process.env.AWS_REGION = REGION;
  process.env.AWS_DEFAULT_REGION = REGION;
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  // No profile or config file of the developer may leak in.
  delete process.env.AWS_PROFILE;
  process.env.AWS_CONFIG_FILE = '/dev/null';
  process.env.AWS_SHARED_CREDENTIALS_FILE = '/dev/null';
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

async function answers(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/**
 * moto, made faithful where gq depends on it (each difference checked against AWS's documented
 * behaviour; see the report of the AWS backend):
 *
 * 1. DynamoDB requests are serialised. moto's DynamoDB is not safe under concurrent requests: a
 *    transaction deep-copies the tables it touches and restores that copy when it fails, wiping
 *    writes made meanwhile by other requests, and a conditional write checks and writes without a
 *    lock. Real DynamoDB is atomic per item and per transaction. Every other service stays
 *    concurrent (SQS long polls must not block sends).
 * 2. SQS stale receipt handles (the message was received again since): moto accepts them for
 *    ChangeMessageVisibility and changes the new delivery's timeout. SQS refuses with
 *    InvalidParameterValue "Message does not exist or is not available for visibility timeout
 *    change". (A stale DeleteMessage is left as moto does it: SQS documents that such a delete
 *    succeeds and "might not" delete the message, so moto deleting it is within that.)
 *
 * 3. Speed only, same semantics: a moto transaction deep-copies each table it touches once per
 *    item of the transaction (100 copies of the whole table for a 100-item transaction, minutes
 *    for a few thousand tasks); the copies are identical, so the first is reused. Safe because
 *    DynamoDB requests are serialised (1).
 *
 * If moto's internals change, a patch that cannot be applied says so on stderr and moto runs
 * without it.
 */
const FAITHFUL_MOTO = `
import sys, threading
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
try:
    from moto.sqs import models as sqsm
    from moto.sqs.exceptions import InvalidParameterValue
    def _stale(m, handle):
        return m.receipt_handle != handle and m.had_receipt_handle(handle)
    _cmv = sqsm.SQSBackend.change_message_visibility
    def change_message_visibility(self, queue_name, receipt_handle, visibility_timeout):
        for m in self.get_queue(queue_name)._messages:
            if _stale(m, receipt_handle):
                raise InvalidParameterValue("Value " + receipt_handle + " for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.")
        return _cmv(self, queue_name, receipt_handle, visibility_timeout)
    sqsm.SQSBackend.change_message_visibility = change_message_visibility
except Exception as e:
    print("gq: moto SQS receipt patch not applied:", repr(e), file=sys.stderr)
try:
    import copy as _copy, types as _types
    import moto.dynamodb.models as _dm
    _twi = _dm.DynamoDBBackend.transact_write_items
    def transact_write_items(self, transact_items):
        tables = {}
        def deepcopy(obj, memo=None):
            if isinstance(obj, _dm.Table):
                if id(obj) not in tables:
                    tables[id(obj)] = _copy.deepcopy(obj)
                return tables[id(obj)]
            return _copy.deepcopy(obj, memo)
        _dm.copy = _types.SimpleNamespace(deepcopy=deepcopy)
        try:
            return _twi(self, transact_items)
        finally:
            _dm.copy = _copy
    _dm.DynamoDBBackend.transact_write_items = transact_write_items
except Exception as e:
    print("gq: moto DynamoDB transaction speed-up not applied:", repr(e), file=sys.stderr)
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()
def faithful(environ, start_response):
    if environ.get('HTTP_X_AMZ_TARGET', '').startswith('DynamoDB_'):
        with lock:
            return list(app(environ, start_response))
    return app(environ, start_response)
run_simple(sys.argv[1], int(sys.argv[2]), faithful, threaded=True)
`;

/** The Python that runs moto_server (pyenv shims and venvs included), if it can import moto. */
function motoPython(): string | undefined {
  const candidates: string[] = [];
  const which = spawnSync('sh', ['-c', 'command -v moto_server'], { encoding: 'utf8' }).stdout.trim();
  const shebang = (file: string) => {
    try {
      const first = readFileSync(file, 'utf8').split('\n', 1)[0] ?? '';
      return first.startsWith('#!') ? first.slice(2).trim().split(/\s+/)[0] : undefined;
    } catch {
      return undefined;
    }
  };
  if (which) {
    const real = spawnSync('pyenv', ['which', 'moto_server'], { encoding: 'utf8' });
    for (const f of [real.status === 0 ? real.stdout.trim() : '', which]) {
      const py = f && shebang(f);
      if (py && /python/.test(py)) candidates.push(py);
    }
  }
  candidates.push('python3');
  return candidates.find((py) => spawnSync(py, ['-c', 'import moto.server, werkzeug.serving'], { stdio: 'ignore' }).status === 0);
}

let warnedUnlocked = false;

async function launch(): Promise<Moto | undefined> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const log = process.env.GQ_MOTO_LOG ?? '/dev/null';
  const py = motoPython();
  if (!py && !warnedUnlocked) {
    warnedUnlocked = true;
    console.warn('moto: no Python that imports moto found; running plain moto_server (DynamoDB not serialised, stale SQS receipts accepted: some tests may fail)');
  }
  const server = py ? '"$3" -c "$4" 127.0.0.1 "$1"' : 'moto_server -H 127.0.0.1 -p "$1"';
  // sh holds moto; it reads our stdin and kills moto when that closes (we exited, however).
  const script =
    `${server} >>"$2" 2>&1 & m=$!; ` +
    'trap \'kill $m 2>/dev/null; exit 0\' TERM INT HUP; ' +
    'while read -r _; do :; done; kill $m 2>/dev/null; wait $m 2>/dev/null; exit 0';
  const child: ChildProcess = spawn('sh', ['-c', script, 'moto-wrapper', String(port), log, py ?? '', FAITHFUL_MOTO], {
    stdio: ['pipe', 'ignore', 'inherit'],
    detached: false,
  });
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  const kill = () => {
    if (!exited) {
      child.stdin?.destroy();
      child.kill('SIGTERM');
    }
  };
  process.once('exit', kill);

  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !exited) {
    if (await answers(endpoint)) {
      return {
        endpoint,
        owned: true,
        async stop() {
          process.off('exit', kill);
          if (exited) return;
          const gone = new Promise<void>((r) => child.once('exit', () => r()));
          child.stdin?.end();
          await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
          kill();
        },
      };
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  kill();
  process.off('exit', kill);
  return undefined;
}

/** A moto for this test file, or undefined when none can be had (skip, loudly). */
export async function startMoto(): Promise<Moto | undefined> {
  const external = process.env.AWS_ENDPOINT_URL;
  if (external) {
    if (/amazonaws\.com|amazonaws\.com\.cn|api\.aws/i.test(external)) {
      throw new Error(`AWS_ENDPOINT_URL=${external} is real AWS; gq's tests only run against moto`);
    }
    setSdkEnv();
    return { endpoint: external.replace(/\/$/, ''), owned: false, stop: async () => {} };
  }
  if (!onPath('moto_server')) return undefined;
  setSdkEnv();
  // A port taken between freePort and moto's bind: try again on another.
  for (let i = 0; i < 3; i++) {
    const m = await launch();
    if (m) return m;
  }
  throw new Error('moto_server is installed but did not start (set GQ_MOTO_LOG=/tmp/moto.log to see why)');
}

/** True when moto can be had; decide describe vs describe.skip at collection time with this. */
export function motoAvailable(): boolean {
  return Boolean(process.env.AWS_ENDPOINT_URL) || onPath('moto_server');
}

/** The loud warning for a test file that skips its AWS tests. */
export function warnSkipped(what: string): void {
  const line = '!'.repeat(100);
  console.warn(
    `\n${line}\n!! SKIPPED: ${what}\n!! Reason: no moto. Neither AWS_ENDPOINT_URL is set nor moto_server is on PATH.\n` +
      `!! Install it with: pip install 'moto[server]'   (these tests never use real AWS)\n${line}\n`,
  );
}

/** Forget everything moto holds (POST /moto-api/reset). */
export async function resetMoto(endpoint: string): Promise<void> {
  const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
  if (!res.ok) throw new Error(`moto reset failed: HTTP ${res.status}`);
  await res.arrayBuffer();
}

/** Clients for moto (dummy credentials, us-east-1). */
export function motoClients(endpoint: string, middleware?: AwsClientOptions['middleware']): AwsClients {
  return makeAwsClients({
    region: REGION,
    endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 3,
    middleware,
  });
}

export interface SharedResources {
  bucket: string;
  table: string;
}

/**
 * The shared resources as the CloudFormation stack (infra/gq.yaml) makes them: the status table
 * (pk S / sk S, on demand, encrypted, TTL on `expiresAt`) and the artifact bucket (public access
 * blocked, SSE-KMS by default, bucket owner enforced, incomplete uploads aborted). Idempotent.
 */
export async function createSharedResources(
  endpoint: string,
  names: Partial<SharedResources> = {},
): Promise<SharedResources> {
  const bucket = names.bucket ?? 'gq-test-artifacts';
  const table = names.table ?? 'gq-test-status';
  const c = motoClients(endpoint);
  try {
    try {
      await c.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    } catch (err) {
      if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes((err as Error).name)) throw err;
    }
    await c.s3.send(
      new PutPublicAccessBlockCommand({
        Bucket: bucket,
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
      }),
    );
    // The stack names its own KMS key; moto's S3 takes the AWS managed one just as well.
    await c.s3.send(
      new PutBucketEncryptionCommand({
        Bucket: bucket,
        ServerSideEncryptionConfiguration: {
          Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms' }, BucketKeyEnabled: true }],
        },
      }),
    );
    await c.s3.send(
      new PutBucketOwnershipControlsCommand({
        Bucket: bucket,
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      }),
    );
    await c.s3.send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: bucket,
        LifecycleConfiguration: {
          Rules: [
            {
              ID: 'abort-incomplete-multipart-uploads',
              Status: 'Enabled',
              Filter: { Prefix: '' },
              AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
            },
          ],
        },
      }),
    );
    let created = false;
    try {
      await c.dynamodb.send(
        new CreateTableCommand({
          TableName: table,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [
            { AttributeName: 'pk', AttributeType: 'S' },
            { AttributeName: 'sk', AttributeType: 'S' },
          ],
          KeySchema: [
            { AttributeName: 'pk', KeyType: 'HASH' },
            { AttributeName: 'sk', KeyType: 'RANGE' },
          ],
          SSESpecification: { Enabled: true },
        }),
      );
      created = true;
    } catch (err) {
      if (!(err instanceof ResourceInUseException)) throw err;
    }
    for (let i = 0; i < 50; i++) {
      const t = await c.dynamodb.send(new DescribeTableCommand({ TableName: table }));
      if (t.Table?.TableStatus === 'ACTIVE') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (created) {
      await c.dynamodb.send(
        new UpdateTimeToLiveCommand({ TableName: table, TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true } }),
      );
    }
  } finally {
    c.destroy();
  }
  return { bucket, table };
}
