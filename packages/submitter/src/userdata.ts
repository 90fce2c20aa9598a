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
 * table (the instance item as the agent writes it, see packages/common/src/aws/dynamo.ts, with
 * state BOOT_FAILED and a one-line detail, for `gq status`; an INSTALL_FAILED item of the agent is
 * kept, not overwritten), uploads userdata.log, calls TerminateInstanceInAutoScalingGroup with
 * ShouldDecrementDesiredCapacity=true for its own instance, then powers off (the launch template
 * sets InstanceInitiatedShutdownBehavior=terminate). The instance role allows both calls
 * (infra/gq.yaml). Stopped from outside (SIGTERM: shutdown, Spot, scale-in) is not a failure.
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
import { keys } from '@gq/common';

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
set -euo pipefail
umask 022
R=${q(p.region)} B=${q(p.bucket)} T=${q(p.table)} J=${q(p.job)} Y=${q(p.instanceType)}
AK=${q(p.agentKey)} AS=${q(p.agentSha256)}
NV=${q(nodeVersion)} NK=${q(p.nodeKey)} NS=${q(p.nodeSha256)}
LK=${q(keys.instanceLog(p.job, '{instance}', 'userdata.log'))} TU=${TASK_USER} TA=${p.taskAwsAccess ? '--task-aws-access' : "''"}
${p.logLevel !== undefined ? `export GQ_LOG_LEVEL=${q(p.logLevel)}` : '# GQ_LOG_LEVEL: agent default'}
export HOME="\${HOME:-/root}"
G="$HOME/gq" M="\${1:-boot}" WHY="" STOPPED="" D=amazonaws.com
[[ $R != cn-* ]] || D+=.cn
mkdir -p "$G"
cd "$G"
exec > >(tee -a "$G/userdata.log") 2>&1
TEE=\${!:-}
log() { echo "[gq-$M $(date -u +%FT%TZ)] $*"; }
# Real EC2 sets no endpoint override; the test runtime may. Never power off outside EC2.
real_ec2() { [ -z "\${AWS_EC2_METADATA_SERVICE_ENDPOINT:-}\${AWS_ENDPOINT_URL:-}" ]; }

creds() { # IMDSv2: instance id and role credentials
  local m=\${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254} t c
  m=\${m%/}
  t=$(curl -fsS -m 5 --retry 3 -X PUT -H 'x-aws-ec2-metadata-token-ttl-seconds: 300' "$m/latest/api/token") || return 1
  md() { curl -fsS -m 5 --retry 3 -H "x-aws-ec2-metadata-token: $t" "$m/latest/meta-data/$1"; }
  ID=$(md instance-id) && c=$(md iam/security-credentials/) && c=$(md "iam/security-credentials/\${c%%$'\\n'*}" | tr -d '\\n') || return 1
  v() { sed -n 's/.*"'$1'" *: *"\\([^"]*\\)".*/\\1/p' <<<"$c"; }
  CK=$(v AccessKeyId) CS=$(v SecretAccessKey) CT=$(v Token)
}
ep() { # SERVICE: its endpoint (AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, else regional)
  local e=AWS_ENDPOINT_URL_\${1^^}
  e=\${e/AUTOS/AUTO_S}
  e=\${!e:-\${AWS_ENDPOINT_URL:-https://$1.$R.$D}}
  echo "\${e%/}"
}
call() { # SERVICE URL CURL-ARGS...: SigV4 with the role's credentials (on stdin, not in argv)
  local s=$1 u=$2
  shift 2
  creds || { log "no instance credentials"; return 1; }
  printf 'user = "%s:%s"\\nheader = "x-amz-security-token: %s"\\n' "$CK" "$CS" "$CT" |
    curl -sS --fail-with-body -K - --aws-sigv4 "aws:amz:$R:$s" --connect-timeout 10 --retry 5 --retry-connrefused "$@" "$u"
}
s3url() { # KEY (path style for dotted buckets and overrides)
  if [ -n "\${AWS_ENDPOINT_URL_S3:-}\${AWS_ENDPOINT_URL:-}" ]; then echo "$(ep s3)/$B/$1"
  elif [[ $B == *.* ]]; then echo "https://s3.$R.$D/$B/$1"
  else echo "https://$B.s3.$R.$D/$1"; fi
}
s3get() { # KEY FILE SHA256
  local c h
  c=$(call s3 "$(s3url "$1")" -H "x-amz-content-sha256: $(sha256sum </dev/null | cut -d' ' -f1)" -m 900 -o "$2.part" -w '%{http_code}') ||
    { WHY+=": GET s3://$B/$1: HTTP \${c:-error}"; rm -f "$2.part"; return 2; }
  h=$(sha256sum "$2.part" | cut -d' ' -f1)
  [ "$h" = "$3" ] || { WHY+=": GET s3://$B/$1: sha256 mismatch, expected $3, got $h"; rm -f "$2.part"; return 3; }
  mv "$2.part" "$2"
  log "GET s3://$B/$1: sha256 ok"
}
s3put() { # KEY FILE
  cp "$2" "$2.up"
  call s3 "$(s3url "$1")" -X PUT -H "x-amz-content-sha256: $(sha256sum "$2.up" | cut -d' ' -f1)" -H 'content-type: text/plain' \\
    --data-binary "@$2.up" -m 60 -o /dev/null && log "uploaded s3://$B/$1"
  local rc=$?
  rm -f "$2.up"
  return $rc
}
json() { sed 's/[\\\\"]/\\\\&/g' <<<"$1"; }
report() { # record why in the status table, upload the log, leave the group (desired - 1: no boot loop)
  log "boot failed: $WHY"
  creds || { log "no instance identity from the metadata service: nothing reported"; return 0; }
  call dynamodb "$(ep dynamodb)/" -w '\\n' -m 15 -H 'x-amz-target: DynamoDB_20120810.PutItem' -H 'content-type: application/x-amz-json-1.0' --data-binary \\
    "$(printf '{"TableName":"%s","Item":{"pk":{"S":"JOB#%s"},"sk":{"S":"INST#%s"},"kind":{"S":"instance"},"job":{"S":"%s"},"instance":{"S":"%s"},"instanceType":{"S":"%s"},"state":{"S":"BOOT_FAILED"},"heartbeatAt":{"S":"%s"},"detail":{"S":"%s"}},"ConditionExpression":"attribute_not_exists(#s) OR #s <> :f","ExpressionAttributeNames":{"#s":"state"},"ExpressionAttributeValues":{":f":{"S":"INSTALL_FAILED"}}}' \\
      "$T" "$J" "\${ID:-}" "$J" "\${ID:-}" "$Y" "$(date -u +%FT%T.000Z)" "$(json "$WHY")")" && log "failure recorded" || log "failure not recorded"
  s3put "\${LK/\\{instance\\}/\${ID:-unknown}}" "$G/userdata.log" || log "could not upload userdata.log"
  call autoscaling "$(ep autoscaling)/" -w '\\n' -m 15 -H 'content-type: application/x-www-form-urlencoded; charset=utf-8' \\
    --data-binary "Action=TerminateInstanceInAutoScalingGroup&InstanceId=\${ID:-}&ShouldDecrementDesiredCapacity=true&Version=2011-01-01" &&
    log "left the Auto Scaling group" || log "could not leave the Auto Scaling group"
}
bye() { # RC [power off]
  trap - EXIT
  if [ -n "\${2:-}" ]; then
    if real_ec2; then log "powering off (the instance terminates)"; shutdown -h now || poweroff; else log "not on real EC2 (endpoint override set): not powering off"; fi
  fi
  exec >&- 2>&- # let tee end (bounded: a leftover process may hold the pipe)
  for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$TEE" 2>/dev/null && sleep 0.2 || break; done
  exit "$1"
}
node_ok() { local v; v=$(node --version 2>/dev/null) && [ "\${v%%.*}" = "\${NV%%.*}" ]; }
block_imds() { # tasks may not reach the role's credentials (iptables rules do not survive a reboot)
  [ -z "$TA" ] || return 0
  local u
  u=$(id -u "$TU")
  if command -v iptables >/dev/null; then
    iptables -w -C OUTPUT -d 169.254.169.254 -m owner --uid-owner "$u" -j REJECT 2>/dev/null ||
      iptables -w -I OUTPUT -d 169.254.169.254 -m owner --uid-owner "$u" -j REJECT
  elif command -v nft >/dev/null; then
    nft list table inet gq >/dev/null 2>&1 || { nft add table inet gq && nft add chain inet gq out '{ type filter hook output priority 0; }' &&
      nft add rule inet gq out meta skuid "$u" ip daddr 169.254.169.254 reject; }
  else
    WHY="cannot keep tasks from the instance role: neither iptables nor nft is installed (use an image with one, or --task-aws-access)"
    return 1
  fi
  log "metadata service blocked for $TU"
}

case $M in
agent)
  [ ! -x "$G/node/bin/node" ] || export PATH="$G/node/bin:$PATH"
  trap '[ -z "$WHY" ] || report; bye 0 off' EXIT
  block_imds
  trap - EXIT
  node "$G/gq-agent.mjs" run --backend aws --region "$R" --bucket "$B" --table "$T" --job "$J" --instance-type "$Y" --task-user "$TU" $TA &
  P=$!
  trap 'STOPPED=1; kill -TERM $P 2>/dev/null' TERM INT # systemd stops us (shutdown): the agent drains
  rc=0
  wait $P || rc=$?
  while [ -n "$STOPPED" ] && kill -0 $P 2>/dev/null; do rc=0; wait $P || rc=$?; done
  echo "$rc" >"$G/agent.rc"
  log "gq-agent exited with status $rc"
  [ -z "$STOPPED" ] || bye 0
  case $rc in
  0) ;;                                              # done: it left its group
  2 | 3) WHY="gq-agent exited with status $rc"; report ;; # for good: job gone, install failed
  *) bye "$rc" ;;                                    # a crash: systemd starts it again
  esac
  bye 0 off ;;
failed)
  WHY="gq-agent exited with status $(cat "$G/agent.rc" 2>/dev/null || echo unknown), ${L.burst} starts in a row"
  report
  bye 0 off ;;
esac

finish() {
  local rc=$?
  trap '' PIPE # tee may be gone: logging must not kill the report
  set +e
  log "boot script ends with status $rc"
  [ "$rc" -eq 0 ] && bye 0
  [ -n "$STOPPED" ] || { WHY=\${WHY:-boot script failed with status $rc}; report; }
  bye "$rc" off
}
trap finish EXIT
trap 'STOPPED=1; exit 143' TERM INT HUP # stopped from outside (shutdown, Spot): not a boot failure
log "gq worker: job $J, instance type $Y, region $R"
cp "$0" "$G/boot.sh"
if node_ok; then
  log "using node $(node --version) at $(command -v node)"
else
  WHY="Node.js install failed"
  log "Node.js $NV from the gq bucket"
  s3get "$NK" "$G/node.tgz" "$NS"
  rm -rf "$G/node"
  mkdir -p "$G/node"
  tar -xzf "$G/node.tgz" -C "$G/node" --strip-components=1
  rm -f "$G/node.tgz"
  export PATH="$G/node/bin:$PATH"
  node_ok || { WHY+=": the node of $NK does not run"; exit 1; }
  log "installed node $(node --version)"
fi
WHY="agent download failed"
s3get "$AK" "$G/gq-agent.mjs" "$AS"
WHY="task user $TU: could not create it"
id -u "$TU" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$TU"
chmod 711 "$HOME" "$G" # $TU reaches its folders under $G/work, and nothing else
WHY=""
block_imds
cat >"$G/${AGENT_UNIT}" <<EOF
[Unit]
Description=gq agent (job $J, $Y)
Wants=network-online.target
After=network-online.target
StartLimitIntervalSec=${L.intervalSec}
StartLimitBurst=${L.burst}
OnFailure=${FAILED_UNIT}
[Service]
Environment="HOME=$HOME"
ExecStart=/bin/bash "$G/boot.sh" agent
Restart=on-failure
RestartSec=${L.restartSec}
KillMode=mixed
TimeoutStopSec=150
[Install]
WantedBy=multi-user.target
EOF
cat >"$G/${FAILED_UNIT}" <<EOF
[Unit]
Description=gq: the agent cannot run here; report it and power off
[Service]
Type=oneshot
Environment="HOME=$HOME"
ExecStart=/bin/bash "$G/boot.sh" failed
EOF
WHY="could not start the ${AGENT_UNIT}"
systemctl link "$G/${FAILED_UNIT}"
systemctl enable --now "$G/${AGENT_UNIT}"
WHY=""
log "${AGENT_UNIT} started"
`;

  const check = checkUserData(text);
  if (!check.ok) throw new Error(`renderUserData: ${check.problems.join('; ')}`);
  return text;
}
