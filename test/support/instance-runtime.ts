/**
 * The part of EC2 that moto does not emulate: running instances. Moto creates instances for Auto
 * Scaling groups but never boots them, runs their UserData or serves instance metadata. This
 * runtime does, as local processes:
 *
 *  - it polls moto's Auto Scaling groups (the real SDK client, ~500 ms);
 *  - for each new InService instance it reads the UserData of the instance's launch template,
 *    starts an IMDS emulator for it (test/support/imds.ts), makes a home folder
 *    `rootDir/<instance-id>/` (standing in for /root) and boots a machine there
 *    (test/support/machine.ts: the UserData on first boot, systemd emulated, stand-ins for
 *    shutdown/poweroff/useradd/iptables...), output to `home/console.log`, with ONLY these
 *    variables (as on EC2, everything else comes from the metadata service):
 *      PATH   this node's folder + the test's PATH (the stand-ins are put first)
 *      HOME   the instance's home folder
 *    and either (default) the endpoint overrides
 *      AWS_ENDPOINT_URL                   moto
 *      AWS_EC2_METADATA_SERVICE_ENDPOINT  the instance's IMDS emulator
 *    or, with `realEc2: true`, none: the UserData and the agent take their real-EC2 code paths
 *    (regional HTTPS endpoints, 169.254.169.254, power-off) and test/support/real-ec2.ts makes
 *    those land on moto and the emulator (a TLS proxy with a test CA, curl's connect-to, a Node
 *    --import hook).
 *  - when an instance leaves its group or is Terminating/Terminated (e.g. the agent called
 *    TerminateInstanceInAutoScalingGroup), it shuts the machine down (SIGTERM to the units' main
 *    processes and the UserData, then SIGKILL to every process of the machine after a grace
 *    period) and stops the instance's IMDS.
 *  - reboot(id): every process of the instance killed, the boot sequence again without UserData.
 *  - an instance that powers itself off (shutdown, poweroff) is terminated in its group when its
 *    launch template says InstanceInitiatedShutdownBehavior=terminate (without lowering the
 *    desired capacity: Auto Scaling replaces it, as on EC2).
 *
 * Safety: nothing runs the host's shutdown, systemctl, useradd or iptables: the machine's
 * stand-ins come first on PATH and only record and emulate.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  DescribeLaunchConfigurationsCommand,
  TerminateInstanceInAutoScalingGroupCommand,
  type AutoScalingGroup,
  type Instance as AsgInstance,
  type LaunchTemplateSpecification,
} from '@aws-sdk/client-auto-scaling';
import { DescribeLaunchTemplateVersionsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { startImds, type ImdsEmulator } from './imds.js';
import { startMachine, type Machine } from './machine.js';
import { startRealEc2Network, type RealEc2Network } from './real-ec2.js';

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
  /** No endpoint overrides: the real-EC2 code paths, on the emulated network (see above). */
  realEc2?: boolean;
  /** Host user the instances' task user stands for (default: nobody when root, else this user). */
  hostTaskUser?: string;
  /**
   * Slow boots (bench/fleet): how long instance number `index` (0, 1, ... in the order the runtime
   * saw them) waits before its UserData starts, standing for EC2's pending time and a slow AMI.
   * Default none.
   */
  bootDelayMs?: (instanceId: string, index: number) => number;
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
  /** Whether any process of the instance is still running. */
  alive: boolean;
  /** Set once the runtime saw the instance leave its group (or stop() was called). */
  terminated: boolean;
  /** The instance powered itself off (shutdown, poweroff). */
  poweredOff: boolean;
  /** Boots so far (1 + reboots). */
  boots: number;
  /** Epoch ms the runtime first saw the instance InService (its launch, as billed). */
  launchedAt: number;
  /** Epoch ms the runtime saw it leave its group or go Terminating (billing ends); undefined while in it. */
  leftAt?: number;
  /** Why the instance did not start, if it did not. */
  error?: string;
}

export interface InstanceRuntime {
  instances(): RuntimeInstance[];
  /** The instance's metadata now announces a Spot interruption (terminate in 2 min). */
  announceSpot(instanceId: string): void;
  /** Every process of the instance killed, then the boot sequence again without UserData. */
  reboot(instanceId: string): Promise<void>;
  /** The emulated machine of an instance (units, stand-in calls). */
  machine(instanceId: string): Machine;
  imds(instanceId: string): ImdsEmulator;
  /** The real-EC2 network (realEc2 only): hosts asked for. */
  readonly network: RealEc2Network | undefined;
  /** Resolve with instances() once predicate(instances()) holds; reject after timeoutMs. */
  waitFor(predicate: (instances: RuntimeInstance[]) => boolean, timeoutMs?: number): Promise<RuntimeInstance[]>;
  /** Text of an instance's console.log (UserData and units: stdout and stderr). */
  consoleLog(instanceId: string): string;
  /** Calls of shutdown/poweroff/halt/reboot (and systemctl poweroff) by any instance. */
  shutdownAttempts(): string[];
  /** Errors met while polling or starting instances. */
  readonly errors: readonly string[];
  /** Stop polling, shut every instance down, stop every IMDS; throws if a process is left. */
  stop(): Promise<void>;
}

interface Tracked {
  id: string;
  group: string;
  instanceType: string;
  home: string;
  imds?: ImdsEmulator;
  machine?: Machine;
  terminated: boolean;
  launchedAt: number;
  leftAt?: number;
  error?: string;
  stopping?: Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Between an instance leaving its group and its machine getting the shutdown (EC2 takes seconds). */
const SHUTDOWN_DELAY_MS = 1000;

// Kill every instance if the test process exits without stop() (synchronously: SIGKILL by marker).
const registry = new Set<Map<string, Tracked>>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const instances of registry) {
      for (const t of instances.values()) {
        for (const pid of t.machine?.pids() ?? []) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
    }
  });
}

/**
 * Tasks run as another user (nobody) must reach their folders under rootDir: the test's own
 * temporary folders (mode 0700 from mkdtemp) get o+x, never anything outside the temp folders.
 */
function traversable(dir: string): void {
  const roots = [tmpdir(), process.env.GQ_TEST_ROOT].filter((r): r is string => !!r).map((r) => resolve(r));
  for (let d = resolve(dir); roots.some((r) => d.startsWith(r + sep)); d = dirname(d)) {
    chmodSync(d, statSync(d).mode | 0o111);
  }
}

/** Spot when the group asks for Spot only (a mixed instances policy with no on-demand share), as EC2 would launch it. */
function lifecycleOf(group: AutoScalingGroup): 'spot' | 'on-demand' {
  const d = group.MixedInstancesPolicy?.InstancesDistribution;
  return d && (d.OnDemandBaseCapacity ?? 0) === 0 && d.OnDemandPercentageAboveBaseCapacity === 0 ? 'spot' : 'on-demand';
}

const SHUTDOWNS = /^(shutdown|poweroff|halt|reboot|telinit)\b|^systemctl (poweroff|halt|reboot)\b/;

export async function startInstanceRuntime(opts: InstanceRuntimeOptions): Promise<InstanceRuntime> {
  const pollMs = opts.pollMs ?? 500;
  const graceMs = opts.graceMs ?? 5000;
  mkdirSync(opts.rootDir, { recursive: true });
  traversable(opts.rootDir);
  const path = [dirname(process.execPath), process.env.PATH ?? '/usr/bin:/bin'].join(':');
  const network = opts.realEc2
    ? await startRealEc2Network({ endpoint: opts.endpoint, region: opts.region, dir: join(opts.rootDir, '.real-ec2') })
    : undefined;

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
  let bootIndex = 0;
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

  /** The instance's UserData and what a shutdown from inside does (InstanceInitiatedShutdownBehavior). */
  async function launchDataOf(group: AutoScalingGroup, inst: AsgInstance): Promise<{ userData?: string; onShutdown: string }> {
    let onShutdown = 'stop'; // EC2's default
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
      onShutdown = out.LaunchTemplateVersions?.[0]?.LaunchTemplateData?.InstanceInitiatedShutdownBehavior ?? onShutdown;
    } else {
      const name = inst.LaunchConfigurationName ?? group.LaunchConfigurationName;
      if (name) {
        const out = await asg.send(new DescribeLaunchConfigurationsCommand({ LaunchConfigurationNames: [name] }));
        encoded = out.LaunchConfigurations?.[0]?.UserData;
      }
    }
    return { userData: encoded ? Buffer.from(encoded, 'base64').toString('utf8') : undefined, onShutdown };
  }

  async function launch(group: AutoScalingGroup, inst: AsgInstance, t: Tracked): Promise<void> {
    const { userData, onShutdown } = await launchDataOf(group, inst);
    if (userData === undefined) throw new Error('its launch template has no UserData');
    const delay = opts.bootDelayMs?.(t.id, bootIndex++) ?? 0;
    if (delay > 0) await sleep(delay);
    if (stopped || t.terminated) return;
    mkdirSync(t.home, { recursive: true });
    t.imds = await startImds({
      instanceId: t.id,
      instanceType: t.instanceType,
      region: opts.region,
      availabilityZone: inst.AvailabilityZone,
      userData,
      lifecycle: lifecycleOf(group),
    });
    if (stopped || t.terminated) {
      await t.imds.stop(); // went away while starting: terminate() may have run before the IMDS existed
      return;
    }
    const endpoints: Record<string, string> = network
      ? network.instanceEnv(t.id, Number(new URL(t.imds.endpoint).port))
      : { AWS_ENDPOINT_URL: opts.endpoint, AWS_EC2_METADATA_SERVICE_ENDPOINT: t.imds.endpoint };
    t.machine = await startMachine({
      id: t.id,
      home: t.home,
      userData,
      imds: t.imds,
      hostTaskUser: opts.hostTaskUser,
      // Powered off from inside: with InstanceInitiatedShutdownBehavior=terminate EC2 terminates
      // the instance, and its group replaces it unless the agent lowered the desired capacity.
      onPowerOff: () => {
        if (onShutdown !== 'terminate') return;
        void asg
          .send(new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: t.id, ShouldDecrementDesiredCapacity: false }))
          .catch(() => undefined); // gone already (it left its group itself)
      },
      env: {
        PATH: path,
        HOME: t.home,
        ...endpoints,
        // Fault tests only (GQ_TEST_FAULT); empty in every other test.
        ...(opts.faultEnv ?? {}),
        // The policy-coverage record (packages/common/src/aws/call-log.ts): which instance calls.
        // The machine passes its environment to its units, so the agent service records too.
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
    t.machine.boot();
  }

  async function terminate(t: Tracked, delayMs = 0): Promise<void> {
    t.terminated = true;
    t.leftAt ??= Date.now();
    t.stopping ??= (async () => {
      // EC2 takes a moment between Terminating and the shutdown reaching the machine.
      if (delayMs > 0) await sleep(delayMs);
      await t.machine?.stop(graceMs);
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
          terminated: false,
          launchedAt: Date.now(),
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
      if (state === undefined || /^(Terminating|Terminated|Detaching|Detached)/.test(state)) void terminate(t, SHUTDOWN_DELAY_MS);
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
    return [...tracked.values()].map((t) => {
      const exit = t.machine?.userDataExit() ?? null;
      return {
        id: t.id,
        group: t.group,
        instanceType: t.instanceType,
        pid: t.machine?.userDataPid(),
        home: t.home,
        imdsEndpoint: t.imds?.endpoint ?? '',
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        alive: t.machine?.alive() ?? false,
        terminated: t.terminated,
        poweredOff: t.machine?.poweredOff ?? false,
        boots: t.machine?.boots ?? 0,
        launchedAt: t.launchedAt,
        ...(t.leftAt !== undefined ? { leftAt: t.leftAt } : {}),
        ...(t.error !== undefined ? { error: t.error } : {}),
      };
    });
  }

  function consoleLog(id: string): string {
    const file = join(opts.rootDir, id, 'console.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  function describe(): string {
    const lines = snapshot().map((i) => {
      const tail = consoleLog(i.id).trimEnd().split('\n').slice(-15).join('\n      ');
      const units = tracked.get(i.id)?.machine?.units().map((u) => `${u.name}=${u.state}`).join(' ') ?? '';
      return `  ${i.id} (${i.group}, ${i.instanceType}) alive ${i.alive} userdata exit ${i.exitCode ?? i.signal} ${units}` +
        `${i.error ? ` error ${i.error}` : ''}\n    console.log tail:\n      ${tail}`;
    });
    return [...lines, ...errors.slice(-10).map((e) => `  runtime: ${e}`)].join('\n') || '  (no instances)';
  }

  function get(id: string): Tracked & { machine: Machine; imds: ImdsEmulator } {
    const t = tracked.get(id);
    if (!t?.machine || !t.imds) throw new Error(`instance runtime: no running instance ${id}`);
    return t as Tracked & { machine: Machine; imds: ImdsEmulator };
  }

  await poll();
  schedule();

  return {
    instances: snapshot,
    announceSpot(instanceId) {
      get(instanceId).imds.announceSpotInterruption();
    },
    reboot: (instanceId) => get(instanceId).machine.reboot(),
    machine: (instanceId) => get(instanceId).machine,
    imds: (instanceId) => get(instanceId).imds,
    network,
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
    shutdownAttempts: () => [...tracked.values()].flatMap((t) => (t.machine?.calls() ?? []).filter((c) => SHUTDOWNS.test(c))),
    errors,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await polling;
      await Promise.all([...launches]);
      await Promise.all([...tracked.values()].map((t) => terminate(t)));
      asg.destroy();
      ec2.destroy();
      await network?.stop();
      const left = [...tracked.values()].filter((t) => t.machine?.alive());
      registry.delete(tracked);
      if (left.length > 0) {
        for (const t of left) await t.machine!.kill();
        throw new Error(`instance runtime: processes left after stop: ${left.map((t) => t.id).join(', ')}`);
      }
    },
  };
}
