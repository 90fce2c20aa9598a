/**
 * The part of EC2 that moto does not emulate: running instances. Moto creates instances for Auto
 * Scaling groups but never boots them, runs their UserData or serves instance metadata. This
 * runtime does, as local processes:
 *
 *  - it polls moto's Auto Scaling groups (the real SDK client, ~500 ms);
 *  - for each new InService instance it reads the UserData of the instance's launch template,
 *    starts an IMDS emulator for it (test/support/imds.ts), makes a home folder
 *    `rootDir/<instance-id>/` and runs `bash userdata.sh` there, detached in its own process
 *    group, stdout+stderr to `home/console.log`, with ONLY these variables:
 *      PATH                               guard folder + this node's folder + the test's PATH
 *      HOME                               the instance's home folder
 *      AWS_ENDPOINT_URL                   moto
 *      AWS_EC2_METADATA_SERVICE_ENDPOINT  the instance's IMDS emulator
 *    No keys and no region: as on EC2, everything else comes from the metadata service.
 *  - when an instance leaves its group or is Terminating/Terminated (e.g. the agent called
 *    TerminateInstanceInAutoScalingGroup), it stops the process group (SIGTERM, then SIGKILL
 *    after a grace period) and the instance's IMDS.
 *
 * Safety: the guard folder first on PATH holds `shutdown`, `poweroff`, `halt`, `reboot` and
 * `systemctl` stand-ins that only record the call (shutdownAttempts()) and fail. The UserData
 * already never powers off when AWS_EC2_METADATA_SERVICE_ENDPOINT is set; the guard is a second
 * line of defence, as tests may run as root on a developer machine.
 */
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  DescribeLaunchConfigurationsCommand,
  type AutoScalingGroup,
  type Instance as AsgInstance,
  type LaunchTemplateSpecification,
} from '@aws-sdk/client-auto-scaling';
import { DescribeLaunchTemplateVersionsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { startImds, type ImdsEmulator } from './imds.js';

export interface InstanceRuntimeOptions {
  /** Moto's endpoint, e.g. http://127.0.0.1:5000. */
  endpoint: string;
  region: string;
  /** Instance homes go to rootDir/<instance-id>/. */
  rootDir: string;
  /** How often to look at the Auto Scaling groups (default 500 ms). */
  pollMs?: number;
  /** Time between SIGTERM and SIGKILL when an instance goes away (default 5 s). */
  graceMs?: number;
  /**
   * Only boot instances of the groups this accepts (default: every group). Needed when moto is
   * shared between test files (AWS_ENDPOINT_URL set): other files' groups are not ours to run.
   */
  groups?: (groupName: string) => boolean;
  /** Fault tests only: extra variables such as GQ_TEST_FAULT for the instances' processes. */
  faultEnv?: Record<string, string>;
  /** File that every instance's AWS SDK calls are appended to (GQ_TEST_AWS_CALL_LOG). */
  callLog?: string;
}

export interface RuntimeInstance {
  id: string;
  group: string;
  instanceType: string;
  /** Pid of the UserData's bash, also its process group id; undefined if it could not start. */
  pid: number | undefined;
  home: string;
  imdsEndpoint: string;
  /** Exit status of the UserData script; null while it runs or when it died of a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Whether any process of the instance's process group is still running. */
  alive: boolean;
  /** Set once the runtime saw the instance leave its group (or stop() was called). */
  terminated: boolean;
  /** Why the instance did not start, if it did not. */
  error?: string;
}

export interface InstanceRuntime {
  instances(): RuntimeInstance[];
  /** The instance's metadata now announces a Spot interruption (terminate in 2 min). */
  announceSpot(instanceId: string): void;
  /** Resolve with instances() once predicate(instances()) holds; reject after timeoutMs. */
  waitFor(predicate: (instances: RuntimeInstance[]) => boolean, timeoutMs?: number): Promise<RuntimeInstance[]>;
  /** Text of an instance's console.log (UserData stdout and stderr). */
  consoleLog(instanceId: string): string;
  /** Calls of the shutdown/poweroff/... guards (should always be empty). */
  shutdownAttempts(): string[];
  /** Errors met while polling or starting instances. */
  readonly errors: readonly string[];
  /** Stop polling, kill every instance, stop every IMDS; throws if a process is left. */
  stop(): Promise<void>;
}

interface Tracked {
  id: string;
  group: string;
  instanceType: string;
  home: string;
  pid?: number;
  imds?: ImdsEmulator;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  exited: boolean;
  terminated: boolean;
  error?: string;
  stopping?: Promise<void>;
}

const GUARDED = ['shutdown', 'poweroff', 'halt', 'reboot', 'systemctl', 'telinit'];
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Process groups that still have a live (non-zombie) member. */
function liveGroups(): Set<number> | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return undefined; // no /proc (macOS): fall back to kill(-pgid, 0)
  }
  const groups = new Set<number>();
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid pgrp ..." — comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') continue;
    groups.add(Number(fields[2]));
  }
  return groups;
}

function groupAlive(pgid: number, live = liveGroups()): boolean {
  if (live) return live.has(pgid);
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

// Kill every instance's process group if the test process exits without stop().
const registry = new Set<Map<string, Tracked>>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const instances of registry) {
      for (const t of instances.values()) if (t.pid !== undefined) killGroup(t.pid, 'SIGKILL');
    }
  });
}

function writeGuards(dir: string, log: string): void {
  mkdirSync(dir, { recursive: true });
  for (const name of GUARDED) {
    const file = join(dir, name);
    writeFileSync(
      file,
      `#!/bin/sh\n# gq test runtime: never let a test "instance" power off the machine.\n` +
        `echo "${name} $* (HOME=$HOME)" >> '${log}'\n` +
        `echo "gq test runtime: refused to run ${name}" >&2\nexit 1\n`,
    );
    chmodSync(file, 0o755);
  }
}

export async function startInstanceRuntime(opts: InstanceRuntimeOptions): Promise<InstanceRuntime> {
  const pollMs = opts.pollMs ?? 500;
  const graceMs = opts.graceMs ?? 5000;
  mkdirSync(opts.rootDir, { recursive: true });
  const guardDir = join(opts.rootDir, '.guard-bin');
  const guardLog = join(opts.rootDir, '.guard-calls.log');
  writeGuards(guardDir, guardLog);
  const path = [guardDir, dirname(process.execPath), process.env.PATH ?? '/usr/bin:/bin'].join(':');

  // The runtime's own calls to moto (the instances get nothing of this).
  const clientConfig = {
    region: opts.region,
    endpoint: opts.endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 2,
  };
  const asg = new AutoScalingClient(clientConfig);
  const ec2 = new EC2Client(clientConfig);

  const tracked = new Map<string, Tracked>();
  registry.add(tracked);
  installExitHook();
  const errors: string[] = [];
  const launches = new Set<Promise<void>>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let polling: Promise<void> | undefined;

  const note = (msg: string) => {
    errors.push(`${new Date().toISOString()} ${msg}`);
    if (errors.length > 100) errors.shift();
  };

  async function describeGroups(): Promise<AutoScalingGroup[]> {
    const groups: AutoScalingGroup[] = [];
    let NextToken: string | undefined;
    do {
      const page = await asg.send(new DescribeAutoScalingGroupsCommand({ NextToken }));
      groups.push(...(page.AutoScalingGroups ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    return groups;
  }

  async function userDataOf(group: AutoScalingGroup, inst: AsgInstance): Promise<string | undefined> {
    const spec: LaunchTemplateSpecification | undefined =
      inst.LaunchTemplate ?? group.LaunchTemplate ?? group.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification;
    let encoded: string | undefined;
    if (spec?.LaunchTemplateId || spec?.LaunchTemplateName) {
      const out = await ec2.send(
        new DescribeLaunchTemplateVersionsCommand({
          ...(spec.LaunchTemplateId ? { LaunchTemplateId: spec.LaunchTemplateId } : { LaunchTemplateName: spec.LaunchTemplateName }),
          Versions: [spec.Version ?? '$Default'],
        }),
      );
      encoded = out.LaunchTemplateVersions?.[0]?.LaunchTemplateData?.UserData;
    } else {
      const name = inst.LaunchConfigurationName ?? group.LaunchConfigurationName;
      if (name) {
        const out = await asg.send(new DescribeLaunchConfigurationsCommand({ LaunchConfigurationNames: [name] }));
        encoded = out.LaunchConfigurations?.[0]?.UserData;
      }
    }
    return encoded ? Buffer.from(encoded, 'base64').toString('utf8') : undefined;
  }

  async function launch(group: AutoScalingGroup, inst: AsgInstance, t: Tracked): Promise<void> {
    const userData = await userDataOf(group, inst);
    if (userData === undefined) throw new Error('its launch template has no UserData');
    if (stopped || t.terminated) return;
    mkdirSync(t.home, { recursive: true });
    const script = join(t.home, 'userdata.sh');
    writeFileSync(script, userData, { mode: 0o700 });
    t.imds = await startImds({
      instanceId: t.id,
      instanceType: t.instanceType,
      region: opts.region,
      availabilityZone: inst.AvailabilityZone,
      userData,
    });
    if (stopped || t.terminated) {
      await t.imds.stop(); // went away while starting: terminate() may have run before the IMDS existed
      return;
    }
    const out = openSync(join(t.home, 'console.log'), 'a');
    try {
      const child = spawn('bash', [script], {
        cwd: t.home,
        detached: true,
        stdio: ['ignore', out, out],
        env: {
          PATH: path,
          HOME: t.home,
          AWS_ENDPOINT_URL: opts.endpoint,
          AWS_EC2_METADATA_SERVICE_ENDPOINT: t.imds.endpoint,
          // Fault tests only (GQ_TEST_FAULT); empty in every other test.
          ...(opts.faultEnv ?? {}),
          // The policy-coverage record (packages/common/src/aws/call-log.ts): which instance calls.
          ...(opts.callLog
            ? {
                GQ_TEST_AWS_CALL_LOG: opts.callLog,
                GQ_TEST_AWS_CALL_WHO: JSON.stringify({
                  job: group.Tags?.find((x) => x.Key === 'gq:job')?.Value,
                  instance: t.id,
                  group: group.AutoScalingGroupName,
                }),
              }
            : {}),
        },
      });
      t.pid = child.pid;
      child.on('error', (e) => {
        t.error = `spawn failed: ${e.message}`;
        t.exited = true;
      });
      child.on('exit', (code, signal) => {
        t.exitCode = code;
        t.signal = signal;
        t.exited = true;
      });
      child.unref();
    } finally {
      closeSync(out);
    }
  }

  async function terminate(t: Tracked): Promise<void> {
    t.terminated = true;
    t.stopping ??= (async () => {
      if (t.pid !== undefined && groupAlive(t.pid)) {
        killGroup(t.pid, 'SIGTERM');
        const deadline = Date.now() + graceMs;
        while (groupAlive(t.pid) && Date.now() < deadline) await sleep(50);
        if (groupAlive(t.pid)) killGroup(t.pid, 'SIGKILL');
        const hard = Date.now() + 3000;
        while (groupAlive(t.pid) && Date.now() < hard) await sleep(50);
      }
      await t.imds?.stop();
    })();
    return t.stopping;
  }

  async function poll(): Promise<void> {
    let groups: AutoScalingGroup[];
    try {
      groups = await describeGroups();
    } catch (e) {
      note(`DescribeAutoScalingGroups: ${(e as Error).message}`);
      return;
    }
    const present = new Map<string, string>(); // instance → lifecycle state
    for (const group of groups) {
      if (opts.groups && !opts.groups(group.AutoScalingGroupName ?? '')) continue;
      for (const inst of group.Instances ?? []) {
        const id = inst.InstanceId;
        if (!id) continue;
        const state = inst.LifecycleState ?? '';
        present.set(id, state);
        if (state !== 'InService' || tracked.has(id) || stopped) continue;
        const t: Tracked = {
          id,
          group: group.AutoScalingGroupName ?? '?',
          instanceType: inst.InstanceType ?? '?',
          home: join(opts.rootDir, id),
          exitCode: null,
          signal: null,
          exited: false,
          terminated: false,
        };
        tracked.set(id, t);
        const p = launch(group, inst, t)
          .catch((e: unknown) => {
            t.error = (e as Error).message;
            note(`instance ${id}: not started: ${t.error}`);
          })
          .finally(() => launches.delete(p));
        launches.add(p);
      }
    }
    for (const t of tracked.values()) {
      if (t.terminated) continue;
      const state = present.get(t.id);
      if (state === undefined || /^(Terminating|Terminated|Detaching|Detached)/.test(state)) void terminate(t);
    }
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      polling = poll().finally(() => {
        polling = undefined;
        schedule();
      });
    }, pollMs);
    timer.unref();
  }

  function snapshot(): RuntimeInstance[] {
    const live = liveGroups();
    return [...tracked.values()].map((t) => ({
      id: t.id,
      group: t.group,
      instanceType: t.instanceType,
      pid: t.pid,
      home: t.home,
      imdsEndpoint: t.imds?.endpoint ?? '',
      exitCode: t.exitCode,
      signal: t.signal,
      alive: t.pid !== undefined && groupAlive(t.pid, live),
      terminated: t.terminated,
      ...(t.error !== undefined ? { error: t.error } : {}),
    }));
  }

  function consoleLog(id: string): string {
    const file = join(opts.rootDir, id, 'console.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  function describe(): string {
    const lines = snapshot().map((i) => {
      const tail = consoleLog(i.id).trimEnd().split('\n').slice(-15).join('\n      ');
      return `  ${i.id} (${i.group}, ${i.instanceType}) pid ${i.pid} alive ${i.alive} exit ${i.exitCode ?? i.signal}` +
        `${i.error ? ` error ${i.error}` : ''}\n    console.log tail:\n      ${tail}`;
    });
    return [...lines, ...errors.slice(-10).map((e) => `  runtime: ${e}`)].join('\n') || '  (no instances)';
  }

  await poll();
  schedule();

  return {
    instances: snapshot,
    announceSpot(instanceId) {
      const t = tracked.get(instanceId);
      if (!t?.imds) throw new Error(`announceSpot: no running instance ${instanceId}`);
      t.imds.announceSpotInterruption();
    },
    async waitFor(predicate, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const now = snapshot();
        if (predicate(now)) return now;
        if (Date.now() > deadline) throw new Error(`instance runtime: condition not met in ${timeoutMs} ms\n${describe()}`);
        await sleep(100);
      }
    },
    consoleLog,
    shutdownAttempts: () =>
      existsSync(guardLog) ? readFileSync(guardLog, 'utf8').split('\n').filter((l) => l !== '') : [],
    errors,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await polling;
      await Promise.all([...launches]);
      await Promise.all([...tracked.values()].map((t) => terminate(t)));
      asg.destroy();
      ec2.destroy();
      const live = liveGroups();
      const left = [...tracked.values()].filter((t) => t.pid !== undefined && groupAlive(t.pid, live));
      registry.delete(tracked);
      if (left.length > 0) {
        for (const t of left) killGroup(t.pid!, 'SIGKILL');
        throw new Error(`instance runtime: processes left after stop: ${left.map((t) => `${t.id} (pgid ${t.pid})`).join(', ')}`);
      }
    },
  };
}
