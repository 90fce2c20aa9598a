/**
 * One emulated EC2 machine for the tests: what an instance has besides its UserData, as local
 * processes. test/support/instance-runtime.ts boots one per Auto Scaling instance; UserData tests
 * boot one directly.
 *
 *  - First boot runs the UserData (`bash userdata.sh`, as cloud-init does, once); reboot() kills
 *    every process of the machine and boots again WITHOUT the UserData: only the systemd units
 *    enabled for multi-user.target start.
 *  - systemd, emulated: `systemctl link|enable [--now]|start|stop|is-active|daemon-reload` on unit
 *    files the UserData wrote. The unit file is parsed and its semantics followed: ExecStart
 *    (systemd's quoting, no shell), Environment=, Type=simple|oneshot, Restart=on-failure with
 *    RestartSec= and RestartPreventExitStatus=, StartLimitIntervalSec=/StartLimitBurst= (the
 *    unit fails with start-limit-hit), OnFailure= (the named unit is started when the unit fails),
 *    WantedBy=multi-user.target (started at boot when enabled), KillMode: when the main process
 *    ends, what it leaves in its "cgroup" is killed.
 *  - The machine's processes are found by a marker variable (GQ_RUNTIME_INSTANCE, and
 *    GQ_RUNTIME_UNIT for a unit's "cgroup") in /proc/<pid>/environ, so that tasks in process
 *    groups of their own are reached too (Linux; elsewhere only the processes started here).
 *  - Stand-ins first on PATH: `systemctl` (above), `shutdown`/`poweroff`/`halt` (recorded, then the
 *    machine powers off: every process killed, poweredOff set), `reboot`, `useradd` (recorded; the
 *    task user is mapped to an existing host user: `id` answers for it), `iptables` (an OUTPUT
 *    REJECT rule for 169.254.169.254 with `-m owner --uid-owner U` makes the metadata emulator
 *    refuse connections of that uid, as the kernel would), `nft` and `ip6tables` (recorded, fail).
 *    Nothing of the host is ever changed.
 * The stand-ins reach this process through a small HTTP control server on 127.0.0.1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { ImdsEmulator } from './imds.js';

export interface MachineOptions {
  id: string;
  /** Stands in for /root: HOME of the UserData and of the units. */
  home: string;
  userData: string;
  imds: ImdsEmulator;
  /** The machine's environment (PATH without the stand-ins; they are put first). */
  env: Record<string, string>;
  /** Host user the image's task user (gq-task) stands for; default nobody as root, else this user. */
  hostTaskUser?: string;
  /** Where stdout and stderr of the UserData and the units go (the console / journal). */
  consoleFile?: string;
  /** Called once the machine powered itself off (shutdown, poweroff). */
  onPowerOff?: () => void;
}

export interface UnitState {
  name: string;
  file: string;
  enabled: boolean;
  state: 'inactive' | 'active' | 'activating' | 'auto-restart' | 'failed';
  result?: string;
  /** Start times (ms) since the last boot. */
  starts: number[];
  mainPid?: number;
}

export interface Machine {
  readonly id: string;
  readonly home: string;
  /** First boot: the UserData runs. */
  boot(): void;
  /** Every process killed, then the boot sequence again without the UserData. */
  reboot(): Promise<void>;
  /** As a shutdown: SIGTERM to the units' main processes and the UserData, SIGKILL after graceMs. */
  stop(graceMs: number): Promise<void>;
  /** Every process killed at once (power cut). */
  kill(): Promise<void>;
  readonly poweredOff: boolean;
  readonly boots: number;
  /** Exit of the UserData (null until it ended). */
  userDataExit(): { code: number | null; signal: NodeJS.Signals | null } | null;
  userDataPid(): number | undefined;
  unit(name: string): UnitState | undefined;
  units(): UnitState[];
  /** Calls of the stand-ins, "name args...", in order. */
  calls(): string[];
  /** Pids of the machine's live processes. */
  pids(): number[];
  alive(): boolean;
}

// ---------------------------------------------------------------------------------------------
// Processes by marker.

const MARK = 'GQ_RUNTIME_INSTANCE';
const UNIT_MARK = 'GQ_RUNTIME_UNIT';
const HAS_PROC = existsSync('/proc/self/environ');

/** Live (non-zombie) pids whose environment has MARK=token (and UNIT_MARK=unit when given). */
export function markedPids(id: string, unit?: string): number[] {
  if (!HAS_PROC) return [];
  const want = `${MARK}=${id}`;
  const wantUnit = unit === undefined ? undefined : `${UNIT_MARK}=${unit}`;
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'Z' || state === 'X') continue;
      const env = readFileSync(`/proc/${name}/environ`, 'utf8').split('\0');
      if (env.includes(want) && (wantUnit === undefined || env.includes(wantUnit))) out.push(Number(name));
    } catch {
      /* gone, or not ours to read */
    }
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Unit files.

export interface UnitFile {
  unit: Record<string, string[]>;
  service: Record<string, string[]>;
  install: Record<string, string[]>;
}

/** systemd's unit file syntax (the part gq uses): sections, Key=Value, comments, repeated keys. */
export function parseUnitFile(text: string): UnitFile {
  const out: UnitFile = { unit: {}, service: {}, install: {} };
  let section: Record<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) {
      section = (out as unknown as Record<string, Record<string, string[]>>)[s[1]!.toLowerCase()];
      if (!section) throw new Error(`unit file: unknown section [${s[1]}]`);
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv || !section) throw new Error(`unit file: cannot parse ${JSON.stringify(line)}`);
    (section[kv[1]!] ??= []).push(kv[2]!);
  }
  return out;
}

/** systemd's word splitting of ExecStart= and Environment=: whitespace, "double" and 'single' quotes. */
export function splitWords(value: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '"' || c === "'") {
      const end = value.indexOf(c, i + 1);
      if (end < 0) throw new Error(`unbalanced quote in ${JSON.stringify(value)}`);
      cur += value.slice(i + 1, end).replace(/\\(.)/g, '$1');
      inWord = true;
      i = end;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

const last = (m: Record<string, string[]>, k: string) => m[k]?.[m[k]!.length - 1];
const seconds = (v: string | undefined, dflt: number) => (v === undefined ? dflt : Number(/^(\d+)s?$/.exec(v)?.[1] ?? dflt));

// ---------------------------------------------------------------------------------------------
// The control server the stand-ins talk to (one per test process).

type Handler = (name: string, args: string[]) => Promise<{ code: number; out?: string }>;
const handlers = new Map<string, Handler>();
let control: Promise<{ port: number; client: string; server: Server }> | undefined;

function controlServer() {
  control ??= (async () => {
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const { id, name, args } = JSON.parse(body) as { id: string; name: string; args: string[] };
        const h = handlers.get(id);
        const answer = (r: { code: number; out?: string }) => res.writeHead(200).end(JSON.stringify(r));
        if (!h) return answer({ code: 1, out: `no machine ${id}\n` });
        h(name, args).then(answer, (e: Error) => answer({ code: 1, out: `${e.message}\n` }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    server.unref();
    const dir = mkdtempSync(join(process.env.GQ_TEST_ROOT ?? tmpdir(), 'machine-ctl-'));
    chmodSync(dir, 0o755);
    const client = join(dir, 'ctl.mjs');
    writeFileSync(
      client,
      `const [port, id, name, ...args] = process.argv.slice(2);
const res = await fetch('http://127.0.0.1:' + port + '/', { method: 'POST', body: JSON.stringify({ id, name, args }) });
const r = await res.json();
if (r.out) process.stdout.write(r.out);
process.exitCode = r.code;
`,
    );
    chmodSync(client, 0o644);
    return { port: (server.address() as AddressInfo).port, client, server };
  })();
  return control;
}

const STUBS = ['systemctl', 'shutdown', 'poweroff', 'halt', 'reboot', 'telinit', 'useradd', 'iptables', 'ip6tables', 'nft'];

// ---------------------------------------------------------------------------------------------

export async function startMachine(o: MachineOptions): Promise<Machine> {
  const ctl = await controlServer();
  // Marks this machine's processes and names it to the control server: unique even when two
  // machines stand for the same instance id (one test after another).
  const token = `${o.id}.${randomBytes(4).toString('hex')}`;
  mkdirSync(o.home, { recursive: true });
  const bin = join(dirname(o.home), `.bin-${basename(o.home)}`);
  mkdirSync(bin, { recursive: true });
  chmodSync(bin, 0o755);
  const hostTaskUser = o.hostTaskUser ?? (process.getuid?.() === 0 ? 'nobody' : userInfo().username);
  for (const name of STUBS) {
    writeFileSync(
      join(bin, name),
      `#!/bin/sh\n# gq test machine: stand-in for ${name} (never the host's)\n` +
        `exec env -u NODE_OPTIONS '${process.execPath}' '${ctl.client}' ${ctl.port} '${token}' ${name} "$@"\n`,
    );
  }
  const realId = spawnSync('sh', ['-c', 'command -v id'], { encoding: 'utf8' }).stdout.trim() || '/usr/bin/id';
  writeFileSync(
    join(bin, 'id'),
    `#!/bin/sh\n# gq test machine: the image's task user gq-task is the host's ${hostTaskUser}\n` +
      `for a; do shift; if [ "$a" = gq-task ]; then\n` +
      `  [ -e '${join(bin, '.useradd-gq-task')}' ] || { echo "id: 'gq-task': no such user" >&2; exit 1; }\n` +
      `  a='${hostTaskUser}'\nfi; set -- "$@" "$a"; done\nexec '${realId}' "$@"\n`,
  );
  for (const name of [...STUBS, 'id']) chmodSync(join(bin, name), 0o755);
  const consoleFile = o.consoleFile ?? join(o.home, 'console.log');
  const calls: string[] = [];
  const units = new Map<string, UnitState & { cfg: UnitFile; child?: ChildProcess; stopping?: boolean; timer?: NodeJS.Timeout }>();
  const iptables = new Set<string>();
  let boots = 0;
  let poweredOff = false;
  let halted = false; // no unit starts any more (power off, or being stopped)
  let userData: ChildProcess | undefined;
  let userDataExit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const spawned = new Set<number>();

  const baseEnv = (unit: string): Record<string, string> => ({
    ...o.env,
    PATH: `${bin}:${o.env.PATH ?? '/usr/bin:/bin'}`,
    [MARK]: token,
    [UNIT_MARK]: unit,
  });

  function run(argv: string[], env: Record<string, string>, cwd: string): ChildProcess {
    const out = (d: Buffer) => appendFileSync(consoleFile, d);
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', out);
    child.stderr!.on('data', out);
    if (child.pid) spawned.add(child.pid);
    child.on('exit', () => child.pid && spawned.delete(child.pid));
    child.unref();
    return child;
  }

  const pids = () => (HAS_PROC ? markedPids(token) : [...spawned]);

  async function killAll(sig: NodeJS.Signals = 'SIGKILL', unit?: string): Promise<void> {
    for (let i = 0; i < 50; i++) {
      const left = unit === undefined ? pids() : markedPids(token, unit);
      if (left.length === 0) return;
      for (const p of left) signal(p, sig);
      await sleep(40);
    }
  }

  function register(path: string): UnitState {
    const name = basename(path);
    const text = readFileSync(path, 'utf8');
    const existing = units.get(name);
    const cfg = parseUnitFile(text);
    if (existing) {
      existing.cfg = cfg;
      return existing;
    }
    const u = { name, file: path, enabled: false, state: 'inactive' as const, starts: [], cfg };
    units.set(name, u);
    return u;
  }

  function startUnit(name: string): void {
    const u = units.get(name);
    if (!u) throw new Error(`Unit ${name} not found.`);
    if (halted || u.state === 'active' || u.state === 'activating') return;
    const now = Date.now();
    const interval = seconds(last(u.cfg.unit, 'StartLimitIntervalSec'), 10) * 1000;
    const burst = Number(last(u.cfg.unit, 'StartLimitBurst') ?? 5);
    if (u.starts.filter((t) => now - t < interval).length >= burst) {
      calls.push(`systemd: ${name}: start request repeated too quickly (start-limit-hit)`);
      return fail(u, 'start-limit-hit');
    }
    u.starts.push(now);
    const exec = last(u.cfg.service, 'ExecStart');
    if (!exec) throw new Error(`${name} has no ExecStart`);
    const env = baseEnv(name);
    for (const e of u.cfg.service.Environment ?? []) {
      for (const w of splitWords(e)) {
        const i = w.indexOf('=');
        if (i > 0) env[w.slice(0, i)] = w.slice(i + 1);
      }
    }
    const type = last(u.cfg.service, 'Type') ?? 'simple';
    u.state = type === 'oneshot' ? 'activating' : 'active';
    u.result = undefined;
    const child = run(splitWords(exec), env, last(u.cfg.service, 'WorkingDirectory') ?? '/');
    u.child = child;
    u.mainPid = child.pid;
    child.on('exit', (code, sig) => void exited(u, code, sig));
  }

  async function exited(u: UnitState & { cfg: UnitFile; stopping?: boolean; timer?: NodeJS.Timeout }, code: number | null, sig: NodeJS.Signals | null) {
    u.mainPid = undefined;
    await killAll('SIGKILL', u.name); // KillMode: what the main process leaves in the unit goes too
    if (u.stopping || halted) {
      u.stopping = false;
      u.state = 'inactive';
      return;
    }
    if (code === 0) {
      u.state = 'inactive';
      return;
    }
    const restart = last(u.cfg.service, 'Restart') ?? 'no';
    const prevent = (last(u.cfg.service, 'RestartPreventExitStatus') ?? '').split(/\s+/).filter(Boolean);
    const status = code === null ? String(sig) : String(code);
    calls.push(`systemd: ${u.name}: main process exited, status=${status}`);
    if ((restart === 'on-failure' || restart === 'always') && !prevent.includes(status)) {
      u.state = 'auto-restart';
      u.timer = setTimeout(() => {
        if (u.state === 'auto-restart') startUnit(u.name);
      }, seconds(last(u.cfg.service, 'RestartSec'), 0.1) * 1000);
      u.timer.unref();
      return;
    }
    fail(u, code === null ? 'signal' : 'exit-code');
  }

  function fail(u: UnitState & { cfg: UnitFile }, result: string): void {
    u.state = 'failed';
    u.result = result;
    for (const v of u.cfg.unit.OnFailure ?? []) for (const n of splitWords(v)) startUnit(n);
  }

  async function powerOff(): Promise<void> {
    if (poweredOff) return;
    halted = true;
    poweredOff = true;
    for (const u of units.values()) if (u.timer) clearTimeout(u.timer);
    await killAll();
    for (const u of units.values()) u.state = 'inactive';
    o.onPowerOff?.();
  }

  function bootUnits(): void {
    for (const u of units.values()) {
      const wanted = (u.cfg.install.WantedBy ?? []).flatMap(splitWords);
      if (u.enabled && wanted.includes('multi-user.target')) startUnit(u.name);
    }
  }

  async function systemctl(args: string[]): Promise<{ code: number; out?: string }> {
    const now = args.includes('--now');
    const [verb, ...rest] = args.filter((a) => !a.startsWith('-'));
    switch (verb) {
      case 'daemon-reload':
        return { code: 0 };
      case 'link':
        for (const p of rest) register(p);
        return { code: 0 };
      case 'enable':
        for (const p of rest) {
          const u = p.startsWith('/') ? register(p) : units.get(p);
          if (!u) return { code: 1, out: `Failed to enable unit: Unit file ${p} does not exist.\n` };
          u.enabled = true;
          if (now) startUnit(u.name);
        }
        return { code: 0 };
      case 'start':
      case 'restart':
        for (const n of rest) {
          if (!units.has(n)) return { code: 5, out: `Failed to start ${n}: Unit ${n} not found.\n` };
          startUnit(n);
        }
        return { code: 0 };
      case 'is-active': {
        const s = units.get(rest[0] ?? '')?.state ?? 'inactive';
        return { code: s === 'active' ? 0 : 3, out: `${s}\n` };
      }
      case 'is-enabled':
        return units.get(rest[0] ?? '')?.enabled ? { code: 0, out: 'enabled\n' } : { code: 1, out: 'disabled\n' };
      case 'poweroff':
      case 'halt':
        setImmediate(() => void powerOff());
        return { code: 0 };
      default:
        return { code: 1, out: `gq test machine: systemctl ${args.join(' ')} is not emulated\n` };
    }
  }

  /** `iptables -w -I|-C OUTPUT -d 169.254.169.254 -m owner --uid-owner U -j REJECT`. */
  function iptablesCall(args: string[]): { code: number; out?: string } {
    const a = args.filter((x) => x !== '-w');
    const op = a[0];
    const rule = a.slice(2).join(' ');
    const m = /^-d 169\.254\.169\.254(?:\/32)? -m owner --uid-owner (\S+) -j (REJECT|DROP)$/.exec(rule);
    if (a[1] !== 'OUTPUT' || !m) return { code: 2, out: `gq test machine: iptables ${args.join(' ')} is not emulated\n` };
    if (op === '-C') return { code: iptables.has(rule) ? 0 : 1 };
    if (op !== '-I' && op !== '-A') return { code: 2, out: 'gq test machine: only -I, -A and -C are emulated\n' };
    iptables.add(rule);
    const who = m[1]!;
    const uid = /^\d+$/.test(who) ? Number(who) : Number(spawnSync(join(bin, 'id'), ['-u', who], { encoding: 'utf8' }).stdout.trim());
    o.imds.blockUid(uid);
    return { code: 0 };
  }

  handlers.set(token, async (name, args) => {
    calls.push(`${name} ${args.join(' ')}`.trim());
    switch (name) {
      case 'systemctl':
        return systemctl(args);
      case 'shutdown':
      case 'poweroff':
      case 'halt':
        setImmediate(() => void powerOff());
        return { code: 0 };
      case 'useradd': {
        const user = args[args.length - 1];
        if (user !== 'gq-task') return { code: 1, out: `gq test machine: only gq-task can be created\n` };
        writeFileSync(join(bin, '.useradd-gq-task'), ''); // from now on `id gq-task` answers
        return { code: 0 };
      }
      case 'iptables':
        return iptablesCall(args);
      default:
        return { code: 1, out: `gq test machine: ${name} is not available\n` };
    }
  });

  return {
    id: o.id,
    home: o.home,
    boot() {
      boots++;
      const script = join(o.home, 'userdata.sh');
      writeFileSync(script, o.userData, { mode: 0o700 });
      userData = run(['bash', script], { ...baseEnv('cloud-final.service'), HOME: o.home }, o.home);
      userData.on('exit', (code, sig) => (userDataExit = { code, signal: sig }));
    },
    async reboot() {
      calls.push('machine: reboot');
      halted = true;
      for (const u of units.values()) if (u.timer) clearTimeout(u.timer);
      await killAll();
      for (const u of units.values()) {
        u.state = 'inactive';
        u.starts = [];
      }
      iptables.clear(); // firewall rules live in the kernel: gone after a reboot
      o.imds.unblockAll();
      halted = false;
      boots++;
      bootUnits();
    },
    async stop(graceMs) {
      halted = true;
      for (const u of units.values()) {
        if (u.timer) clearTimeout(u.timer);
        if (u.mainPid) signal(u.mainPid, 'SIGTERM'); // KillMode=mixed: the main process first
      }
      if (userData?.pid && userDataExit === null) signal(-userData.pid, 'SIGTERM');
      const deadline = Date.now() + graceMs;
      while (pids().length > 0 && Date.now() < deadline) await sleep(50);
      await killAll();
      handlers.delete(token);
    },
    async kill() {
      halted = true;
      await killAll();
      handlers.delete(token);
    },
    get poweredOff() {
      return poweredOff;
    },
    get boots() {
      return boots;
    },
    userDataExit: () => userDataExit,
    userDataPid: () => userData?.pid,
    unit: (name) => {
      const u = units.get(name);
      return u && { name: u.name, file: u.file, enabled: u.enabled, state: u.state, result: u.result, starts: [...u.starts], mainPid: u.mainPid };
    },
    units: () => [...units.values()].map((u) => ({ name: u.name, file: u.file, enabled: u.enabled, state: u.state, result: u.result, starts: [...u.starts], mainPid: u.mainPid })),
    calls: () => [...calls],
    pids,
    alive: () => pids().length > 0,
  };
}
