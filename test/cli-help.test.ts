/**
 * Each command's --help lists exactly the options it takes (submit's job settings nowhere else),
 * with an example; the older Python tool's command lines and flags are accepted or answered.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gq, gqEnv, statusJson, testHome } from './support/cli.js';

/** The --flags in a help text's option sections (not its usage line or examples). */
function helpOptions(help: string): string[] {
  const body = help.split(/^Examples:$/m)[0]!;
  return [...body.matchAll(/^ {2,}(?:-\w, )?(--[a-z0-9_-]+)/gm)].map((m) => m[1]!).sort();
}

const COMMON = ['--help', '--verbose', '--version'];
const BACKEND = ['--backend', '--profile', '--region', '--stack'];
const WATCH = ['--boot-failures', '--boot-timeout'];
const WORKERS = ['--workers', '--slots', '--max-instances', '--spot', '--spot-alternatives', '--gurobi-product-code', '--task-aws-access', '--launch-failures', ...WATCH];
const JOB = ['--retries', '--timeout', '--idle', '--visibility', '--unreachable-timeout', '--install-timeout', '--install-retries', '--spot-interruptions'];

const EXPECTED: Record<string, string[]> = {
  submit: [...COMMON, ...BACKEND, ...JOB, ...WORKERS, '--max-cost', '--name', '--code', '--install', '--results', '--input', '--output', '--license', '--wait', '--report', '--json', '--dry-run', '--estimate-runtime', '--like'],
  status: [...COMMON, ...BACKEND, '--workers', ...WATCH, '--json', '--watch', '--tasks'],
  results: [...COMMON, ...BACKEND, '--out', '--json', '--with-provenance', '--failed'],
  report: [...COMMON, ...BACKEND, '--out', '--json'],
  logs: [...COMMON, ...BACKEND, '--instance', '--follow'],
  cancel: [...COMMON, ...BACKEND, '--json'],
  retry: [...COMMON, ...BACKEND, ...WORKERS, '--failed', '--license', '--wait', '--json'],
  clean: [...COMMON, ...BACKEND, '--force'],
  setup: [...COMMON, '--region', '--profile', '--stack', '--node-mirror', '--vpc-id', '--egress', '--subnets', '--public-ipv4', '--gateway-endpoints'],
  doctor: [...COMMON, '--region', '--profile', '--stack', '--max-instances', '--spot', '--gurobi-product-code', '--job-file', '--instance-type'],
  completion: [...COMMON],
  prices: [...COMMON, '--region', '--profile', '--json'],
  resume: [...COMMON, ...BACKEND, '--max-cost', ...WORKERS, '--wait', '--json'],
};

/** Options only submit takes: a job's own settings. */
const SUBMIT_ONLY = [...JOB, '--name', '--code', '--install', '--results', '--input', '--output'];

describe('gq <command> --help', () => {
  const home = testHome('help');
  const env = gqEnv(home);

  it.each(Object.keys(EXPECTED))('%s --help lists exactly its own options, with an example', async (cmd) => {
    const r = await gq([cmd, '--help'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(helpOptions(r.stdout)).toEqual([...new Set(EXPECTED[cmd])].sort());
    expect(r.stdout).toMatch(new RegExp(`^Examples:\\n {2}gq ${cmd}`, 'm'));
    if (cmd !== 'submit') for (const o of SUBMIT_ONLY) expect(r.stdout, `${cmd} --help shows ${o}`).not.toContain(o);
    // The older tool's spellings are accepted by submit but never shown.
    expect(r.stdout).not.toMatch(/--create|--dispatch|--extra_|--tag_offset/);
  });

  it('a setting of another command is refused with the usual error', async () => {
    const r = await gq(['status', '--spot'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('gq: Unknown argument: spot');
    expect(r.stderr).toContain('hint: Run gq --help, or gq <command> --help.');
  });

  it('the top-level help lists the commands, not their options', async () => {
    const r = await gq(['--help'], env);
    expect(r.code).toBe(0);
    // Every command has its expected options above (a new command gets its --help checked too).
    expect([...r.stdout.matchAll(/^ {2}gq ([a-z-]+)/gm)].map((m) => m[1]).sort()).toEqual(Object.keys(EXPECTED).sort());
    expect(helpOptions(r.stdout)).toEqual(COMMON.slice().sort());
  });
});

describe('the older Python tool', () => {
  const home = testHome('old-tool');
  const env = gqEnv(home);

  it("answers the dispatcher's five positionals with the gq submit that does the same, writing nothing", async () => {
    const r = await gq(['submit', 'myexamplejob', 'config/jobdetails.csv', 'config/example/INSTALL.sh', 'config/example', 'results.csv', '--create', '--dispatch', '-v', '-i', '../data=data'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("gq: gq submit takes the job file and options, not the older tool's five arguments");
    expect(r.stderr).toContain(
      'hint: The same job with gq: gq submit config/jobdetails.csv --name myexamplejob --install config/example/INSTALL.sh --code config/example --results results.csv --verbose --input ../data=data',
    );
    expect((await gq(['status', '--json'], env)).stdout.trim()).toBe('[]');
  });

  it.each([
    [['python', 'dispatcher.py', 'j', 'jobs.csv', 'INSTALL.sh', 'code', 'out/r.csv', '-o', 'extra.txt'], 'gq submit jobs.csv --name j --install INSTALL.sh --code code --results out/r.csv --output extra.txt'],
    [['get_s3_files.py', 'myjob', 'folder'], 'gq results myjob --out folder'],
    [['update_tags.py', 'percent_complete', '50'], 'gq-agent tag percent_complete 50'],
  ])('answers %j with its gq equivalent', async (argv, equivalent) => {
    const r = await gq(argv, env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("is the older Python tool's script");
    expect(r.stderr).toContain(`hint: The same with gq: ${equivalent}`);
  });

  it('accepts its submit flags: -c/-d and --tag_offset with a note, -i/-o and their long names as --input/--output, -v', async () => {
    const code = join(home, 'code');
    const data = join(home, 'data');
    mkdirSync(code, { recursive: true });
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, 'in.txt'), 'from-data\n');
    // The older tool's job file: header instance_type,command.
    const jobs = join(home, 'jobdetails.csv');
    writeFileSync(jobs, 'instance_type,command\nlocal,cat extra/in.txt > results.csv; echo kept > more.txt\n');
    const r = await gq(
      ['submit', jobs, '--name', 'old-flags', '--code', code, '-c', '-d', '--tag_offset', '10', '--extra_input_code_path', `${data}=extra`, '-o', 'more.txt', '-v', '--wait', '--json'],
      env,
      { timeoutMs: 60_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('note: -c/--create and -d/--dispatch are not needed');
    expect(r.stderr).toContain('note: --tag_offset is not needed');
    expect(r.stderr).toContain('"msg":"configuration"'); // -v is --verbose: debug logs
    const st = await statusJson('old-flags', env, true);
    expect(st.counts.succeeded).toBe(1);
    const out = join(home, 'out');
    const res = await gq(['results', 'old-flags', '--out', out, '--json'], env);
    expect(res.code, res.stderr).toBe(0);
    expect(readFileSync(join(out, 'tasks', '1', 'results.csv'), 'utf8')).toBe('from-data\n');
    expect(readFileSync(join(out, 'tasks', '1', 'more.txt'), 'utf8')).toBe('kept\n');
  });
});
