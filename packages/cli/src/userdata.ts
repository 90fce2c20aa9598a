/**
 * The UserData of a worker instance: a bash script that cloud-init runs as root at first boot. It
 * needs only bash, coreutils, tar and curl >= 7.76 (every AWS call is `curl --aws-sigv4` with the
 * instance role's credentials from IMDSv2: no AWS CLI, no Node bootstrap); Amazon Linux 2023
 * (curl 8), Ubuntu 22.04 (curl 7.81) and 24.04 (curl 8.5) have it.
 *
 * First boot (no argument):
 *  1. copies itself to $G/boot.sh (G = $HOME/gq, /root/gq on EC2): the service runs that copy;
 *  2. Node.js: the image's `node` when its major version is the pinned one, else the pinned build
 *     from the account's gq bucket (uploaded once by `gq setup`, sha256 from nodejs.org's
 *     SHASUMS256.txt checked here again): nothing is downloaded from the internet;
 *  3. the agent bundle from the bucket, sha256 checked;
 *  4. the task user (gq-task): tasks never run as root;
 *  5. the systemd service gq-agent (Restart=on-failure, bounded by StartLimitBurst, enabled for
 *     multi-user.target so that it comes back after a reboot; EC2 runs UserData on the first boot
 *     only) and gq-agent-failed, its OnFailure= unit; then `systemctl enable --now` and exit 0.
 * `boot.sh agent` is the service's ExecStart: it blocks the metadata service for the task user
 * (iptables owner match, again on every start: the rule does not survive a reboot) unless tasks
 * may use the role, runs the agent, and when the agent is done (status 0), or ends for good
 * (2: job gone, 3: install failed), powers the instance off; any other status is a crash and
 * systemd restarts it. `boot.sh failed` runs when systemd gives up (start limit hit).
 *
 * A failed boot (first boot failing, the agent ending with 2 or 3, or systemd giving up) must not
 * become a boot loop: powering off alone leaves the group's desired capacity as it is, and Auto
 * Scaling launches a replacement that fails the same way, for ever. So it records why in the status
 * table (the instance item as the agent writes it, see packages/common/src/aws/status-store/, with
 * state BOOT_FAILED and a one-line detail, for `gq status`; an INSTALL_FAILED item of the agent is
 * kept, not overwritten), uploads userdata.log, calls TerminateInstanceInAutoScalingGroup with
 * ShouldDecrementDesiredCapacity=true for its own instance, then powers off (the launch template
 * sets InstanceInitiatedShutdownBehavior=terminate). The instance role allows both calls
 * (infra/gq.yaml). Stopped from outside (SIGTERM: shutdown, Spot, scale-in) is not a failure.
 *
 * The script is packages/cli/boot/worker-boot.sh, a shell file of its own, behind a header
 * that renderUserData writes: the parameters, validated and quoted, as shell variables, and the
 * report's PutItem body, made from the status table's item layout (instanceItem in
 * packages/common/src/aws/status-store/), so that the script writes no item by hand.
 *
 * The script holds no secrets: no credentials (the instance role provides them through IMDS; they
 * reach curl on its standard input, never its command line), no licence (the agent fetches it).
 *
 * The test runtime (test/support/instance-runtime.ts) runs this very script as a local process and
 * emulates systemd. With endpoint overrides (AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_ENDPOINT_URL*)
 * set, the script knows it is not on EC2 and never powers off; without them (the runtime's real-EC2
 * mode) it takes exactly the EC2 path: regional HTTPS endpoints, 169.254.169.254, power-off.
 *
 * References: user data is limited to 16 KB raw
 * (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/user-data.html) and runs on the first boot
 * only; `systemctl enable PATH` links a unit file outside the search path (systemctl(1): the file
 * system must be there at boot, as /root is); AL2023's default curl is curl-minimal, which keeps
 * HTTP(S) and its authentication methods (https://docs.aws.amazon.com/linux/al2023/ug/curl-minimal.html);
 * curl has --aws-sigv4 since 7.75 and --fail-with-body since 7.76.
 */
import { readFileSync } from 'node:fs';
import { keys, type InstanceRecord, type InstanceState } from '@gq/common';
import { instanceItem } from '@gq/common/aws/index';

/** EC2 limit on user data: 16 KB in raw form, before base64 encoding. */
export const userDataLimitBytes = 16 * 1024;
/** What gq allows itself, so that the script can grow without reaching the limit. */
export const userDataBudgetBytes = 12 * 1024;

/** The Node.js build instances run when the image has no node of the same major version. */
export const PINNED_NODE_VERSION = 'v22.20.0';

/** Name of the unprivileged user tasks run as on EC2. */
export const TASK_USER = 'gq-task';

/** The systemd units the UserData installs. */
export const AGENT_UNIT = 'gq-agent.service';
export const FAILED_UNIT = 'gq-agent-failed.service';
/** systemd's bound on agent restarts: this many starts within the interval, then it gives up. */
export const AGENT_START_LIMIT = { burst: 4, intervalSec: 900, restartSec: 5 };

export interface UserDataParams {
  region: string;
  bucket: string;
  table: string;
  job: string;
  instanceType: string;
  /** Key of the agent bundle (gq-agent.mjs) in the bucket. */
  agentKey: string;
  /** Hex sha256 of the agent bundle. */
  agentSha256: string;
  /** Pinned Node.js version, e.g. "v22.20.0": an image node of this major version is used as it is. */
  nodeVersion: string;
  /** Key of the Node.js tarball (.tar.gz, this instance type's architecture) in the bucket. */
  nodeKey: string;
  /** Hex sha256 of that tarball (from nodejs.org's SHASUMS256.txt, checked by `gq setup`). */
  nodeSha256: string;
  /** Let tasks use the instance role (metadata service not blocked for them). Default false. */
  taskAwsAccess?: boolean;
  /** A worker of a Spot job's on-demand group: the agent serves the type's on-demand queue (job/on-demand.ts). */
  onDemand?: boolean;
  /** GB of the root EBS volume of the launch template (the agent records it for the cost figures); 0: unknown. */
  rootVolumeGb?: number;
  /** Exported to the agent as GQ_LOG_LEVEL. */
  logLevel?: string;
}

export interface UserDataCheck {
  ok: boolean;
  /** UTF-8 size of the raw script (what EC2 limits). */
  bytes: number;
  problems: string[];
}

/** Quote a value for bash (single quotes; safe for any text without NUL). */
function q(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function must(name: string, value: string, ok: RegExp, what: string): void {
  if (!ok.test(value)) throw new Error(`renderUserData: invalid ${name} ${JSON.stringify(value)} (${what})`);
}

/** Things that must never appear in user data (it is readable by anyone with ec2:Describe*). */
const FORBIDDEN: Array<[RegExp, string]> = [
  [/\b(AKIA|ASIA)[A-Z0-9]{16}\b/, 'an AWS access key id'],
  [/aws_secret_access_key/i, 'a secret access key variable'],
  [/aws_session_token/i, 'a session token variable'],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a private key'],
  [/licen[cs]e[_-]?key\s*[=:]/i, 'a licence key'],
];

/** Pure check of a rendered script: size under the EC2 limit, a shebang, nothing secret-looking. */
export function checkUserData(text: string): UserDataCheck {
  const bytes = Buffer.byteLength(text, 'utf8');
  const problems: string[] = [];
  if (bytes >= userDataLimitBytes) {
    problems.push(`user data is ${bytes} bytes; EC2 accepts less than ${userDataLimitBytes} (raw, before base64)`);
  }
  if (!text.startsWith('#!/bin/bash\n')) problems.push('user data does not start with #!/bin/bash');
  for (const [re, what] of FORBIDDEN) if (re.test(text)) problems.push(`user data contains ${what}`);
  return { ok: problems.length === 0, bytes, problems };
}

/**
 * What the parameters may be, at most (the largest legal inputs are tested against the budget).
 * Regions: the longest today is 14 characters (ap-southeast-5); instance types 19
 * (u7in-32tb.224xlarge). S3 bucket names have 3-63 characters, DynamoDB table names 3-255:
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html
 */
export const PARAM_RULES = {
  region: [/^[a-z]{2}(-[a-z]+){1,3}-\d{1,2}$/, 'like us-east-1', 32],
  bucket: [/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name', 63],
  table: [/^[A-Za-z0-9_.-]{3,255}$/, 'a DynamoDB table name', 255],
  job: [/^[a-z][a-z0-9-]{0,39}$/, 'a gq job name', 40],
  instanceType: [/^[a-z0-9-]{1,16}\.[a-z0-9-]{1,16}$/, 'like c5.large', 33],
  agentKey: [/^[A-Za-z0-9._/-]{1,200}$/, 'an S3 key of letters, digits and . _ / -', 200],
  nodeKey: [/^[A-Za-z0-9._/-]{1,200}$/, 'an S3 key of letters, digits and . _ / -', 200],
  agentSha256: [/^[0-9a-f]{64}$/, '64 lower-case hex digits', 64],
  nodeSha256: [/^[0-9a-f]{64}$/, '64 lower-case hex digits', 64],
  nodeVersion: [/^v?\d{1,3}\.\d{1,3}\.\d{1,3}$/, 'like v22.20.0', 12],
} as const satisfies Record<string, readonly [RegExp, string, number]>;

/** The report's runtime values, in the order the script hands them to printf (see worker-boot.sh). */
export const REPORT_SLOTS = ['instance', 'instance', 'heartbeatAt', 'detail'] as const;

/**
 * The boot-failure report's PutItem body as a printf format of REPORT_SLOTS: the status table's
 * instance item (instanceItem, the layout putInstance writes, in DynamoDB JSON) in state
 * BOOT_FAILED, written unless the agent's INSTALL_FAILED item is there (its detail says more).
 */
export function bootFailurePutItem(p: Pick<UserDataParams, 'table' | 'job' | 'instanceType'>): string {
  const slot = (name: (typeof REPORT_SLOTS)[number]) => `@gq-slot:${name}@`;
  const rec: InstanceRecord = {
    job: p.job,
    instance: slot('instance'),
    instanceType: p.instanceType,
    state: 'BOOT_FAILED',
    heartbeatAt: slot('heartbeatAt'),
    detail: slot('detail'),
  };
  const item: Record<string, { S: string }> = {};
  for (const [name, value] of Object.entries(instanceItem(rec))) {
    if (typeof value !== 'string') throw new Error(`bootFailurePutItem: attribute ${name} is not a string`);
    item[name] = { S: value };
  }
  const state: keyof InstanceRecord = 'state';
  const kept: InstanceState = 'INSTALL_FAILED';
  const body = JSON.stringify({
    TableName: p.table,
    Item: item,
    ConditionExpression: 'attribute_not_exists(#s) OR #s <> :f',
    ExpressionAttributeNames: { '#s': state },
    ExpressionAttributeValues: { ':f': { S: kept } },
  });
  const order = [...body.matchAll(/@gq-slot:(\w+)@/g)].map((m) => m[1]);
  if (order.join() !== REPORT_SLOTS.join()) {
    throw new Error(`bootFailurePutItem: the item holds ${order.join(', ')}; the script passes ${REPORT_SLOTS.join(', ')}`);
  }
  return body.replace(/[\\%]/g, '$&$&').replace(/@gq-slot:\w+@/g, '%s');
}

/** The script's body: boot/worker-boot.sh (beside src/ and dist/), its leading comment lines left out. */
let cachedBody: string | undefined;
function scriptBody(): string {
  cachedBody ??= readFileSync(new URL('../boot/worker-boot.sh', import.meta.url), 'utf8').replace(/^(#.*\n)+/, '');
  return cachedBody;
}

export function renderUserData(p: UserDataParams): string {
  for (const [name, [re, what, max]] of Object.entries(PARAM_RULES)) {
    const value = String(p[name as keyof UserDataParams]);
    must(name, value, re, what);
    if (value.length > max) throw new Error(`renderUserData: ${name} is longer than ${max} characters`);
  }
  const nodeVersion = p.nodeVersion.startsWith('v') ? p.nodeVersion : `v${p.nodeVersion}`;
  if (p.logLevel !== undefined) must('logLevel', p.logLevel, /^(trace|debug|info|warn|error|fatal|silent)$/, 'a pino level');
  const L = AGENT_START_LIMIT;

  const text = `#!/bin/bash
# gq worker boot script, generated by gq (see userdata.ts in gq). No secrets: AWS access is the
# instance role's, via IMDSv2. First boot: install, then run the agent as systemd service
# ${AGENT_UNIT}. Modes: agent (its ExecStart), failed (its OnFailure). Log: $G/userdata.log
R=${q(p.region)} B=${q(p.bucket)} T=${q(p.table)} J=${q(p.job)} Y=${q(p.instanceType)} RV=${Math.max(0, Math.round(p.rootVolumeGb ?? 0))}
AK=${q(p.agentKey)} AS=${q(p.agentSha256)}
NV=${q(nodeVersion)} NK=${q(p.nodeKey)} NS=${q(p.nodeSha256)}
LK=${q(keys.instanceLog(p.job, '{instance}', 'userdata.log'))} TU=${TASK_USER} OD=${p.onDemand ? '--on-demand' : "''"} TA=${p.taskAwsAccess ? '--task-aws-access' : "''"}
AU=${AGENT_UNIT} FU=${FAILED_UNIT} SB=${L.burst} SI=${L.intervalSec} SR=${L.restartSec}
PI=${q(bootFailurePutItem(p))}
${p.logLevel !== undefined ? `export GQ_LOG_LEVEL=${q(p.logLevel)}` : '# GQ_LOG_LEVEL: agent default'}
${scriptBody()}`;

  const check = checkUserData(text);
  if (!check.ok) throw new Error(`renderUserData: ${check.problems.join('; ')}`);
  return text;
}
