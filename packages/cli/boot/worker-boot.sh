#!/bin/bash
# shellcheck shell=bash disable=SC2059
# The worker boot script: the body of the UserData. packages/cli/src/userdata.ts puts a
# header in front of it (shebang, one comment, the variables below, all validated and quoted) and
# checks the whole against EC2's size limit; these leading comment lines are left out of the
# UserData. What it does, and why, is in userdata.ts's module comment.
#
# Variables of the header:
#   R region, B bucket, T table, J job, Y instance type, RV root volume GB (0: unknown)
#   AK, AS  the agent bundle's key in the bucket and its sha256
#   NV, NK, NS  the pinned Node.js version, its tarball's key and sha256
#   LK  key of userdata.log ({instance}: the instance id), TU the task user,
#   TA  '--task-aws-access' or '', OD '--on-demand' (a Spot job's on-demand group) or ''
#   AU, FU  the agent's systemd unit and its OnFailure= unit; SB, SI, SR: StartLimitBurst,
#       StartLimitIntervalSec, RestartSec
#   PI  the boot-failure report's PutItem body (DynamoDB JSON, made from the status table's item
#       layout), a printf format of four %s: instance id, instance id, time, detail
#   GQ_LOG_LEVEL  exported when set
set -euo pipefail
umask 022
export HOME="${HOME:-/root}"
G="$HOME/gq" M="${1:-boot}" WHY="" STOPPED="" D=amazonaws.com
[[ $R != cn-* ]] || D+=.cn
mkdir -p "$G"
cd "$G"
exec > >(tee -a "$G/userdata.log") 2>&1
TEE=${!:-}
log() { echo "[gq-$M $(date -u +%FT%TZ)] $*"; }
# Real EC2 sets no endpoint override; the test runtime may. Never power off outside EC2.
real_ec2() { [ -z "${AWS_EC2_METADATA_SERVICE_ENDPOINT:-}${AWS_ENDPOINT_URL:-}" ]; }

creds() { # IMDSv2: instance id and role credentials
  local m=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254} t c
  m=${m%/}
  t=$(curl -fsS -m 5 --retry 3 -X PUT -H 'x-aws-ec2-metadata-token-ttl-seconds: 300' "$m/latest/api/token") || return 1
  md() { curl -fsS -m 5 --retry 3 -H "x-aws-ec2-metadata-token: $t" "$m/latest/meta-data/$1"; }
  ID=$(md instance-id) && c=$(md iam/security-credentials/) && c=$(md "iam/security-credentials/${c%%$'\n'*}" | tr -d '\n') || return 1
  v() { sed -n 's/.*"'$1'" *: *"\([^"]*\)".*/\1/p' <<<"$c"; }
  CK=$(v AccessKeyId) CS=$(v SecretAccessKey) CT=$(v Token)
}
ep() { # SERVICE: its endpoint (AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, else regional)
  local e=AWS_ENDPOINT_URL_${1^^}
  e=${e/AUTOS/AUTO_S}
  e=${!e:-${AWS_ENDPOINT_URL:-https://$1.$R.$D}}
  echo "${e%/}"
}
call() { # SERVICE URL CURL-ARGS...: SigV4 with the role's credentials (on stdin, not in argv)
  local s=$1 u=$2
  shift 2
  creds || { log "no instance credentials"; return 1; }
  printf 'user = "%s:%s"\nheader = "x-amz-security-token: %s"\n' "$CK" "$CS" "$CT" |
    curl -sS --fail-with-body -K - --aws-sigv4 "aws:amz:$R:$s" --connect-timeout 10 --retry 5 --retry-connrefused "$@" "$u"
}
s3url() { # KEY (path style for dotted buckets and overrides)
  if [ -n "${AWS_ENDPOINT_URL_S3:-}${AWS_ENDPOINT_URL:-}" ]; then echo "$(ep s3)/$B/$1"
  elif [[ $B == *.* ]]; then echo "https://s3.$R.$D/$B/$1"
  else echo "https://$B.s3.$R.$D/$1"; fi
}
s3get() { # KEY FILE SHA256
  local c h
  c=$(call s3 "$(s3url "$1")" -H "x-amz-content-sha256: $(sha256sum </dev/null | cut -d' ' -f1)" -m 900 -o "$2.part" -w '%{http_code}') ||
    { WHY+=": GET s3://$B/$1: HTTP ${c:-error}"; rm -f "$2.part"; return 2; }
  h=$(sha256sum "$2.part" | cut -d' ' -f1)
  [ "$h" = "$3" ] || { WHY+=": GET s3://$B/$1: sha256 mismatch, expected $3, got $h"; rm -f "$2.part"; return 3; }
  mv "$2.part" "$2"
  log "GET s3://$B/$1: sha256 ok"
}
s3put() { # KEY FILE
  cp "$2" "$2.up"
  call s3 "$(s3url "$1")" -X PUT -H "x-amz-content-sha256: $(sha256sum "$2.up" | cut -d' ' -f1)" -H 'content-type: text/plain' \
    --data-binary "@$2.up" -m 60 -o /dev/null && log "uploaded s3://$B/$1"
  local rc=$?
  rm -f "$2.up"
  return $rc
}
json() { sed 's/[\\"]/\\&/g' <<<"$1"; }
report() { # record why in the status table, upload the log, leave the group (desired - 1: no boot loop)
  log "boot failed: $WHY"
  creds || { log "no instance identity from the metadata service: nothing reported"; return 0; }
  call dynamodb "$(ep dynamodb)/" -w '\n' -m 15 -H 'x-amz-target: DynamoDB_20120810.PutItem' -H 'content-type: application/x-amz-json-1.0' --data-binary \
    "$(printf "$PI" "${ID:-}" "${ID:-}" "$(date -u +%FT%T.000Z)" "$(json "$WHY")")" && log "failure recorded" || log "failure not recorded"
  s3put "${LK/\{instance\}/${ID:-unknown}}" "$G/userdata.log" || log "could not upload userdata.log"
  call autoscaling "$(ep autoscaling)/" -w '\n' -m 15 -H 'content-type: application/x-www-form-urlencoded; charset=utf-8' \
    --data-binary "Action=TerminateInstanceInAutoScalingGroup&InstanceId=${ID:-}&ShouldDecrementDesiredCapacity=true&Version=2011-01-01" &&
    log "left the Auto Scaling group" || log "could not leave the Auto Scaling group"
}
bye() { # RC [power off]
  trap - EXIT
  if [ -n "${2:-}" ]; then
    if real_ec2; then log "powering off (the instance terminates)"; shutdown -h now || poweroff; else log "not on real EC2 (endpoint override set): not powering off"; fi
  fi
  exec >&- 2>&- # let tee end (bounded: a leftover process may hold the pipe)
  for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$TEE" 2>/dev/null && sleep 0.2 || break; done
  exit "$1"
}
node_ok() { local v; v=$(node --version 2>/dev/null) && [ "${v%%.*}" = "${NV%%.*}" ]; }
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
  node "$G/gq-agent.mjs" run --backend aws --region "$R" --bucket "$B" --table "$T" --job "$J" --instance-type "$Y" --root-volume-gb "${RV:-0}" --task-user "$TU" $TA $OD &
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
  WHY="gq-agent exited with status $(cat "$G/agent.rc" 2>/dev/null || echo unknown), $SB starts in a row"
  report
  bye 0 off ;;
esac

finish() {
  local rc=$?
  trap '' PIPE # tee may be gone: logging must not kill the report
  set +e
  log "boot script ends with status $rc"
  [ "$rc" -eq 0 ] && bye 0
  [ -n "$STOPPED" ] || { WHY=${WHY:-boot script failed with status $rc}; report; }
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
cat >"$G/$AU" <<EOF
[Unit]
Description=gq agent (job $J, $Y)
Wants=network-online.target
After=network-online.target
StartLimitIntervalSec=$SI
StartLimitBurst=$SB
OnFailure=$FU
[Service]
Environment="HOME=$HOME"
ExecStart=/bin/bash "$G/boot.sh" agent
Restart=on-failure
RestartSec=$SR
KillMode=mixed
TimeoutStopSec=150
[Install]
WantedBy=multi-user.target
EOF
cat >"$G/$FU" <<EOF
[Unit]
Description=gq: the agent cannot run here; report it and power off
[Service]
Type=oneshot
Environment="HOME=$HOME"
ExecStart=/bin/bash "$G/boot.sh" failed
EOF
WHY="could not start the $AU"
systemctl link "$G/$FU"
systemctl enable --now "$G/$AU"
WHY=""
log "$AU started"
