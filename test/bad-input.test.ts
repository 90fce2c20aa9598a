/**
 * Bad input, through the real `gq` CLI as a subprocess: every case must fail with exit code 1,
 * a message that names the problem (file and line where there is one), a `hint:` line and no
 * stack trace, and must leave NOTHING behind:
 *   - local backend: the test's GQ_HOME has no gq.db, no artifacts and no worker process;
 *   - AWS on moto: the bucket, the status table, the queues, the Auto Scaling groups and the
 *     launch templates are exactly as they were before the command.
 * The download side: keys in the artifact store (or the status records) that would make
 * `gq results` write outside --out, or read through a symbolic link, are refused before anything
 * is written, and the refusal says which key and why.
 *
 * The job-file validator's cases are unit-tested in packages/common/test/jobfile.test.ts; here
 * they go through the CLI end to end, with the large ones (50 MB, 1,000,000 rows) timed.
 */
import { createServer, type Server } from 'node:http';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { ScanCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { DescribeLaunchTemplatesCommand } from '@aws-sdk/client-ec2';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { ListQueuesCommand } from '@aws-sdk/client-sqs';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { gq, gqEnv, killAll, pidsMatching, testHome, waitFor, type CliResult } from './support/cli.js';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { describeAws } from './support/moto.js';

const slow = process.env.GQ_QUICK ? it.skip : it;

/** Timings for the report (printed at the end). */
const timings: Record<string, number> = {};

// ---------------------------------------------------------------------------------------------
// Fixtures: one folder of inputs shared by every case; each case runs in a home of its own.

const work = testHome('bad-input-work');
const code = join(work, 'code');
const f = (name: string) => join(work, name);

function writeFixtures(): void {
  mkdirSync(code, { recursive: true });
  writeFileSync(join(code, 'run.sh'), 'echo hi > results.csv\n');
  mkdirSync(f('data'), { recursive: true });
  writeFileSync(f('data/x.txt'), 'x\n');
  writeFileSync(f('ok.csv'), 'instance_type,command\nlocal,echo hi\n');
  writeFileSync(f('aws.csv'), 'instance_type,command\nt3.micro,echo hi\n');
  writeFileSync(f('empty.csv'), '');
  writeFileSync(f('header.csv'), 'instance_type,command\n');
  writeFileSync(f('blank.csv'), '\n\n   \n,,\n');
  writeFileSync(f('binary.csv'), randomBytes(4096));
  writeFileSync(f('nul.csv'), Buffer.from('instance_type,command\nlocal,echo one\nlocal,echo \0 two\n'));
  writeFileSync(f('latin1.csv'), Buffer.concat([Buffer.from('instance_type,command\nlocal,echo ok\nlocal,echo caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
  writeFileSync(f('utf16.csv'), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('instance_type,command\r\nlocal,echo hi\r\n', 'utf16le')]));
  writeFileSync(f('book.csv'), Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), randomBytes(200)]));
  writeFileSync(f('semicolons.csv'), 'instance_type;command\nlocal;echo hi\n');
  writeFileSync(f('badrow.csv'), 'instance_type,command\nlocal,echo 1\nT3.Small,echo 2\nlocal,\n');
  writeFileSync(f('bigcmd.csv'), `instance_type,command\nlocal,echo small\nlocal,echo ${'a'.repeat(1024 * 1024)}\n`);
  writeFileSync(f('empty.sh'), '');
  writeFileSync(f('install.sh'), 'echo installing\n');
  writeFileSync(f('empty.lic'), '');
  writeFileSync(f('binary.lic'), randomBytes(300));
  writeFileSync(f('afile'), 'not a folder\n');
  // Larger than the 200 MiB limit without using the disk: a sparse file.
  writeFileSync(f('huge.csv'), '');
  truncateSync(f('huge.csv'), 201 * 1024 * 1024);
}

// ---------------------------------------------------------------------------------------------
// Checks

/** Exit 1, the expected words, a hint, no stack trace, nothing on stdout. */
function expectRefused(r: CliResult, want: Array<string | RegExp>): void {
  const all = `${r.stdout}\n${r.stderr}`;
  expect(all, 'internal error').not.toMatch(/internal error|a bug; please report/);
  expect(all, 'stack trace').not.toMatch(/^\s+at .+(\(.*:\d+:\d+\)|:\d+:\d+)$/m);
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr, 'first line').toMatch(/^gq: \S/);
  expect(r.stderr, 'hint line').toMatch(/^hint: \S.{10,}/m);
  for (const w of want) {
    if (typeof w === 'string') expect(r.stderr).toContain(w);
    else expect(r.stderr).toMatch(w);
  }
  expect(r.stdout.trim(), 'stdout').toBe('');
}

/** The local backend wrote nothing: no state file, no artifacts, no worker. */
function expectNothingLocal(home: string): void {
  const gqHome = join(home, 'gq');
  expect(existsSync(join(gqHome, 'gq.db')), 'gq.db created').toBe(false);
  expect(existsSync(join(gqHome, 'artifacts')), 'artifacts created').toBe(false);
  expect(pidsMatching(home), 'processes started').toEqual([]);
}

interface LocalCase {
  id: string;
  args: string[];
  want: Array<string | RegExp>;
  env?: Record<string, string>;
  /** Called with the case's home before gq runs (e.g. to write its config file). */
  before?: (home: string, env: NodeJS.ProcessEnv) => void;
}

async function runLocalCase(c: LocalCase): Promise<CliResult> {
  const home = testHome(`bad-${c.id}`);
  const env = gqEnv(home, c.env);
  c.before?.(home, env);
  const r = await gq(c.args, env, { cwd: work, timeoutMs: 60_000 });
  expectRefused(r, c.want);
  expectNothingLocal(home);
  rmSync(home, { recursive: true, force: true });
  return r;
}

const sub = (...args: string[]) => ['submit', ...args];

// ---------------------------------------------------------------------------------------------
// The corpus (local backend)

const JOB_FILES: LocalCase[] = [
  { id: 'empty-file', args: sub('empty.csv', '--code', 'code'), want: ['empty.csv: the file is empty'] },
  { id: 'header-only', args: sub('header.csv', '--code', 'code'), want: ['header.csv:1: the file has a header but no tasks'] },
  { id: 'blank-lines-only', args: sub('blank.csv', '--code', 'code'), want: ['blank.csv: the file has only blank lines'] },
  { id: 'binary-data', args: sub('binary.csv', '--code', 'code'), want: ['binary.csv: the file is not a text file (it holds binary data)'] },
  { id: 'nul-byte', args: sub('nul.csv', '--code', 'code'), want: ['nul.csv:3: column "command": the command contains a NUL byte'] },
  { id: 'not-utf8', args: sub('latin1.csv', '--code', 'code'), want: ['latin1.csv:3: the line has bytes that are not UTF-8 text (the first is 0xE9)', 'iconv'] },
  { id: 'utf16', args: sub('utf16.csv', '--code', 'code'), want: ['utf16.csv: the file is UTF-16 text, not UTF-8'] },
  { id: 'xlsx-zip', args: sub('book.csv', '--code', 'code'), want: ['book.csv: the file is a ZIP archive'] },
  { id: 'semicolons', args: sub('semicolons.csv', '--code', 'code'), want: ['semicolons.csv:1: the columns are separated by ";", not commas'] },
  {
    id: 'two-bad-rows',
    args: sub('badrow.csv', '--code', 'code'),
    want: ['The job file badrow.csv has 2 problems', 'badrow.csv:3: column "instance_type": "T3.Small" is not an instance type', 'did you mean "t3.small"?', 'badrow.csv:4: column "command": the command is empty'],
  },
  { id: 'command-of-1mb', args: sub('bigcmd.csv', '--code', 'code'), want: ['bigcmd.csv:3: column "command": the command is 1,048,581 bytes long; the limit is 131,071 bytes'] },
  { id: 'over-200mib', args: sub('huge.csv', '--code', 'code'), want: ['huge.csv: the file is 201 MiB; the limit is 200 MiB', 'split huge.csv'] },
  { id: 'missing-job-file', args: sub('nothere.csv', '--code', 'code'), want: ['The job file nothere.csv does not exist.'] },
  { id: 'job-file-is-a-folder', args: sub('data', '--code', 'code'), want: ['data is a folder, not a job file.'] },
];

const JOB_NAMES: LocalCase[] = [
  { id: 'name-too-long', args: sub('ok.csv', '--code', 'code', '--name', 'a'.repeat(41)), want: ['it is 41 characters long; the limit is 40'] },
  { id: 'name-uppercase', args: sub('ok.csv', '--code', 'code', '--name', 'MyJob'), want: ['Invalid job name "MyJob": it has upper-case letters', 'Did you mean "myjob"?'] },
  { id: 'name-reserved', args: sub('ok.csv', '--code', 'code', '--name', 'status'), want: ['Invalid job name "status": "status" is reserved by gq'] },
  { id: 'name-dotdot', args: sub('ok.csv', '--code', 'code', '--name', '../x'), want: ['Invalid job name "../x": a job name cannot contain path characters'] },
  { id: 'name-slash', args: sub('ok.csv', '--code', 'code', '--name', 'a/b'), want: ['Invalid job name "a/b": a job name cannot contain path characters ("/")'] },
  { id: 'name-empty', args: sub('ok.csv', '--code', 'code', '--name', ''), want: ['Invalid job name "": the job name is empty'] },
];

const PATHS: LocalCase[] = [
  { id: 'input-dest-escapes', args: sub('ok.csv', '--code', 'code', '--input', 'data=../x'), want: ['--input destination "../x" leads outside the code folder', '--input ../data=data'] },
  { id: 'input-dest-absolute', args: sub('ok.csv', '--code', 'code', '--input', 'data=/etc/x'), want: ['--input destination "/etc/x" is absolute'] },
  { id: 'input-source-missing', args: sub('ok.csv', '--code', 'code', '--input', 'nodata=data'), want: ['--input source nodata does not exist'] },
  { id: 'input-no-equals', args: sub('ok.csv', '--code', 'code', '--input', 'data'), want: ['--input "data" is not LOCAL=REMOTE (there is no "=")'] },
  { id: 'output-escapes', args: sub('ok.csv', '--code', 'code', '--output', '../secret'), want: ['Output path "../secret" leads outside the code folder'] },
  { id: 'output-absolute', args: sub('ok.csv', '--code', 'code', '--output', '/etc/passwd'), want: ['Output path "/etc/passwd" is absolute'] },
  { id: 'results-absolute', args: sub('ok.csv', '--code', 'code', '--results', '/tmp/results.csv'), want: ['Results path "/tmp/results.csv" is absolute; it must be relative to the code folder'] },
  { id: 'results-escapes', args: sub('ok.csv', '--code', 'code', '--results', 'a/../../r.csv'), want: ['Results path "a/../../r.csv" leads outside the code folder'] },
  { id: 'results-key-too-long', args: sub('ok.csv', '--code', 'code', '--results', `${'r'.repeat(200)}/`.repeat(5) + 'r.csv'), want: ['The path given to --results is too long', 'and S3 allows 1024'] },
  { id: 'code-missing', args: sub('ok.csv', '--code', 'nocode'), want: ['Code folder nocode does not exist.', 'hint: Check the path given to --code.'] },
  { id: 'code-is-a-file', args: sub('ok.csv', '--code', 'afile'), want: ['Code folder afile is not a folder.'] },
  { id: 'install-missing', args: sub('ok.csv', '--code', 'code', '--install', 'noinstall.sh'), want: ['Install script noinstall.sh does not exist.'] },
  { id: 'install-empty', args: sub('ok.csv', '--code', 'code', '--install', 'empty.sh'), want: ['Install script empty.sh is empty.'] },
  { id: 'install-is-a-folder', args: sub('ok.csv', '--code', 'code', '--install', 'data'), want: ['Install script data is not a file.'] },
  { id: 'licence-missing', args: sub('ok.csv', '--code', 'code', '--license', 'gurobi.lic'), want: ['Licence file gurobi.lic does not exist.'] },
  { id: 'licence-empty', args: sub('ok.csv', '--code', 'code', '--license', 'empty.lic'), want: ['Licence file empty.lic is empty.'] },
  { id: 'licence-binary', args: sub('ok.csv', '--code', 'code', '--license', 'binary.lic'), want: ['Licence file binary.lic is not a text file.'] },
];

const writeConfig = (text: string) => (home: string) => writeFileSync(join(home, 'config.json'), text);

const CONFIG: LocalCase[] = [
  { id: 'config-invalid-json', before: writeConfig('{"retries": 2,\n "backend": }'), args: sub('ok.csv', '--code', 'code'), want: [/Config file .*config\.json is not valid JSON: Unexpected token/] },
  { id: 'config-empty', before: writeConfig(''), args: sub('ok.csv', '--code', 'code'), want: [/Config file .*config\.json is empty\./] },
  { id: 'config-array', before: writeConfig('[1, 2]'), args: sub('ok.csv', '--code', 'code'), want: ['must hold a JSON object of settings, not an array'] },
  {
    id: 'config-wrong-type',
    before: writeConfig('{"retries": "many"}'),
    args: sub('ok.csv', '--code', 'code'),
    want: [/setting "retries" from config file .*config\.json \(flag --retries, env GQ_RETRIES\) is "many"; it must be a whole number from 0 to 20/, 'hint: Fix "retries" in'],
  },
  {
    id: 'config-unknown-key',
    before: writeConfig('{"max-instances": 3, "colour": "red"}'),
    args: sub('ok.csv', '--code', 'code'),
    want: [/unknown settings "max-instances", "colour" in config file .*config\.json/, 'did you mean "maxInstances"?'],
  },
  // GQ_BACKEND (set by gqEnv) would override the file: unset it so that the file's value counts.
  { id: 'config-bad-backend', env: { GQ_BACKEND: '' }, before: writeConfig('{"backend": "gcp"}'), args: sub('ok.csv', '--code', 'code'), want: ['setting "backend" from config file', 'is "gcp"; it must be "local" or "aws"'] },
  {
    id: 'config-is-a-folder',
    before: (home) => mkdirSync(join(home, 'config.json')),
    args: sub('ok.csv', '--code', 'code'),
    want: [/Config file .*config\.json is a folder, not a file\./],
  },
  { id: 'env-retries-fraction', env: { GQ_RETRIES: '1.5' }, args: sub('ok.csv', '--code', 'code'), want: ['setting "retries" from environment', 'is "1.5"; it must be a whole number', 'GQ_RETRIES=2'] },
];

const FLAGS: LocalCase[] = [
  { id: 'retries-negative', args: sub('ok.csv', '--code', 'code', '--retries', '-1'), want: ['setting "retries" from command line (flag --retries, env GQ_RETRIES) is -1; it must be a whole number from 0 to 20', 'hint: Give --retries a whole number'] },
  { id: 'timeout-parsecs', args: sub('ok.csv', '--code', 'code', '--timeout', '5 parsecs'), want: ['setting "timeout" from command line', 'is "5 parsecs"; it must be a duration such as 90s'] },
  { id: 'workers-zero', args: sub('ok.csv', '--code', 'code', '--workers', '0'), want: ['setting "workers" from command line', 'is 0; it must be a whole number from 1 to 256'] },
  { id: 'workers-not-a-number', args: sub('ok.csv', '--code', 'code', '--workers', 'many'), want: ['setting "workers" from command line', 'is not a number; it must be a whole number from 1 to 256'] },
  { id: 'backend-unknown', args: sub('ok.csv', '--code', 'code', '--backend', 'gcp'), want: ['Invalid values', 'Given: "gcp", Choices: "local", "aws"'] },
  { id: 'unknown-flag', args: sub('ok.csv', '--code', 'code', '--retrys', '3'), want: ['Unknown argument'] },
];

const UNKNOWN_JOB: LocalCase[] = [
  { id: 'status-unknown', args: ['status', 'nosuchjob'], want: ['No job named "nosuchjob".'] },
  { id: 'results-unknown', args: ['results', 'nosuchjob'], want: ['No job named "nosuchjob".'] },
  { id: 'logs-unknown', args: ['logs', 'nosuchjob', '1'], want: ['No job named "nosuchjob".'] },
  { id: 'cancel-unknown', args: ['cancel', 'nosuchjob'], want: ['No job named "nosuchjob".'] },
  { id: 'retry-unknown', args: ['retry', 'nosuchjob', '--failed'], want: ['No job named "nosuchjob".'] },
  { id: 'clean-unknown', args: ['clean', 'nosuchjob'], want: ['No job named "nosuchjob".'] },
  { id: 'results-path-name', args: ['results', '../../etc'], want: ['No job named "../../etc": a job name cannot contain path characters'] },
];

beforeAll(() => writeFixtures());
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  if (Object.keys(timings).length) console.log(`bad-input timings (ms): ${JSON.stringify(timings)}`);
});

describe('bad input, local backend: refused with file/line and a hint; nothing created', () => {
  // Each case has a home of its own: they run side by side.
  describe.concurrent('corpus', () => {
    const groups: Array<[string, LocalCase[]]> = [
      ['job file', JOB_FILES],
      ['job name', JOB_NAMES],
      ['path', PATHS],
      ['config', CONFIG],
      ['flag', FLAGS],
      ['unknown job', UNKNOWN_JOB],
    ];
    for (const [group, cases] of groups) {
      it.each(cases.map((c) => [group, c.id, c] as const))('%s: %s', async (_g, _id, c) => {
        await runLocalCase(c);
      });
    }

    it('unknown job: refused next to a real job, which is untouched', async () => {
      const home = testHome('bad-unknown-beside');
      const env = gqEnv(home);
      const ok = await gq(sub('ok.csv', '--code', 'code', '--name', 'real-job', '--workers', '1', '--json'), env, { cwd: work });
      expect(ok.code, ok.stderr).toBe(0);
      for (const args of [['status', 'other-job'], ['results', 'other-job'], ['logs', 'other-job', '1'], ['cancel', 'other-job'], ['retry', 'other-job', '--failed'], ['clean', 'other-job']]) {
        expectRefused(await gq(args, env, { cwd: work }), ['No job named "other-job".']);
      }
      const db = new Database(join(home, 'gq', 'gq.db'), { readonly: true });
      try {
        expect(db.prepare('SELECT name FROM jobs').all()).toEqual([{ name: 'real-job' }]);
      } finally {
        db.close();
      }
      await waitFor('workers to leave', async () => pidsMatching(home).length === 0, 30_000);
    });
  });

  // Alone, so that the timings mean something.
  describe('large job files', () => {
    slow('a 50 MB file whose last row is bad: that line is named, in seconds', async () => {
      const rows = ['instance_type,command'];
      let size = 0;
      for (let i = 1; size < 50 * 1024 * 1024; i++) {
        const row = `local,python run.py --seed ${i} --label "${'x'.repeat(40)}"`;
        rows.push(row);
        size += row.length + 1;
      }
      rows.push('c5.2xlarge,');
      const line = rows.length;
      writeFileSync(f('fifty.csv'), rows.join('\n') + '\n');
      const t0 = Date.now();
      await runLocalCase({ id: '50mb', args: sub('fifty.csv', '--code', 'code'), want: [`fifty.csv:${line}: column "command": the command is empty`] });
      timings['50 MB file, bad last row'] = Date.now() - t0;
      expect(timings['50 MB file, bad last row']).toBeLessThan(30_000);
      unlinkSync(f('fifty.csv'));
    });

    slow('1,000,000 rows of which one is bad: that line is named, in seconds', async () => {
      const rows = new Array<string>(1_000_001);
      rows[0] = 'instance_type,command';
      for (let i = 1; i <= 1_000_000; i++) rows[i] = i === 765_432 ? `t3.Micro,julia run.jl --seed ${i}` : `t3.micro,julia run.jl --seed ${i}`;
      writeFileSync(f('million.csv'), rows.join('\n') + '\n');
      const t0 = Date.now();
      const r = await runLocalCase({
        id: 'million',
        args: sub('million.csv', '--code', 'code'),
        want: ['The job file million.csv has 1 problem.', 'million.csv:765433: column "instance_type": "t3.Micro" is not an instance type (instance types are lower case)'],
      });
      timings['1,000,000 rows, one bad'] = Date.now() - t0;
      expect(r.stderr.split('\n').filter((l) => l.startsWith('  ')).length).toBe(1);
      // About 3 s on an idle 2-core machine; generous for a loaded one.
      expect(timings['1,000,000 rows, one bad']).toBeLessThan(30_000);
      unlinkSync(f('million.csv'));
    });
  });
});

// ---------------------------------------------------------------------------------------------
// The download side, local backend: a finished job whose records or artifacts were tampered with.

describe.concurrent('gq results refuses keys that would write outside --out (local backend)', () => {
  let pristine: string;
  const JOB = 'done-job';

  beforeAll(async () => {
    pristine = testHome('bad-results-pristine');
    const env = gqEnv(pristine);
    writeFileSync(
      f('done.csv'),
      'instance_type,command\n' +
        'local,"echo n,v > results.csv; echo 1,one >> results.csv; mkdir -p extra; echo e1 > extra/e.txt; echo log of 1"\n' +
        'local,"echo n,v > results.csv; echo 2,two >> results.csv; echo log of 2"\n',
    );
    const r = await gq(sub('done.csv', '--code', 'code', '--name', JOB, '--output', 'extra', '--workers', '2', '--wait', '--json'), env, { cwd: work, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    await waitFor('workers to leave', async () => pidsMatching(pristine).length === 0, 15_000);
  }, 90_000);

  afterAll(() => {
    // Its workers left by themselves (checked in beforeAll); anything still running is a failure.
    expect(killAll(pristine)).toBe(0);
  });

  /** A copy of the finished job's home, for one case to tamper with. */
  function copyHome(id: string): { home: string; env: NodeJS.ProcessEnv; db: Database.Database; outside: string; out: string } {
    const home = testHome(`bad-results-${id}`);
    rmSync(home, { recursive: true, force: true });
    cpSync(pristine, home, { recursive: true, verbatimSymlinks: true });
    const db = new Database(join(home, 'gq', 'gq.db'));
    const outside = join(home, 'outside');
    mkdirSync(outside);
    return { home, env: gqEnv(home), db, outside, out: join(home, 'out') };
  }

  function setKeys(db: Database.Database, task: number, set: Record<string, unknown>): void {
    const row = db.prepare('SELECT record FROM tasks WHERE job = ? AND task = ?').get(JOB, task) as { record: string };
    const rec = { ...JSON.parse(row.record), ...set };
    db.prepare('UPDATE tasks SET record = ? WHERE job = ? AND task = ?').run(JSON.stringify(rec), JOB, task);
  }

  /** Every file under `dir` (relative), following no links. */
  function filesIn(dir: string): string[] {
    if (!existsSync(dir)) return [];
    return (readdirSync(dir, { recursive: true, withFileTypes: true }) as any[])
      .filter((e) => !e.isDirectory())
      .map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1))
      .sort();
  }

  async function expectRefusedDownload(c: ReturnType<typeof copyHome>, want: Array<string | RegExp>, args: string[] = []): Promise<void> {
    c.db.close();
    const before = filesIn(c.out);
    const r = await gq(['results', JOB, '--out', c.out, ...args], c.env, { cwd: work });
    expectRefused(r, [`Refusing to download`, 'Nothing was downloaded.', ...want]);
    // Nothing written outside --out, and nothing downloaded into it either.
    expect(filesIn(c.outside)).toEqual([]);
    expect(filesIn(c.out)).toEqual(before);
    expect(existsSync(join(work, 'escaped.csv'))).toBe(false);
    rmSync(c.home, { recursive: true, force: true });
  }

  it('the untampered job downloads (the baseline for the cases below)', async () => {
    const c = copyHome('baseline');
    c.db.close();
    const r = await gq(['results', JOB, '--out', c.out], c.env, { cwd: work });
    expect(r.code, r.stderr).toBe(0);
    expect(filesIn(c.out)).toEqual(['results.csv', 'tasks.csv', 'tasks/1/extra/e.txt', 'tasks/1/log.txt', 'tasks/1/results.csv', 'tasks/2/log.txt', 'tasks/2/results.csv']);
    rmSync(c.home, { recursive: true, force: true });
  });

  it('a result key with ".." that climbs out of --out', async () => {
    const c = copyHome('dotdot');
    setKeys(c.db, 1, { resultKey: `jobs/${JOB}/tasks/1/files/../../../../../../../../..${c.outside}/escaped.csv` });
    await expectRefusedDownload(c, ['task 1:', 'it climbs out with ".."', 'so it would be written outside']);
  });

  it('an absolute result key', async () => {
    const c = copyHome('absolute');
    setKeys(c.db, 1, { resultKey: `${c.outside}/escaped.csv` });
    await expectRefusedDownload(c, [`task 1: "${c.outside}/escaped.csv": it is not one of the task's own files`]);
  });

  it('an output key with ".." inside the task\'s own prefix', async () => {
    const c = copyHome('output-dotdot');
    setKeys(c.db, 1, { outputKeys: [`jobs/${JOB}/tasks/1/files/extra/../../../../x.txt`] });
    await expectRefusedDownload(c, ['it climbs out with ".."']);
  });

  it('a key with backslashes (a Windows-style escape)', async () => {
    const c = copyHome('backslash');
    setKeys(c.db, 2, { resultKey: `jobs/${JOB}/tasks/2/files/..\\..\\..\\escaped.csv` });
    await expectRefusedDownload(c, ['task 2:', 'it contains a backslash']);
  });

  it("a key that belongs to another task, and a log key that points at the job's licence", async () => {
    const c = copyHome('foreign');
    setKeys(c.db, 1, { resultKey: `jobs/${JOB}/tasks/2/files/results.csv`, logKey: `jobs/${JOB}/secret/license` });
    await expectRefusedDownload(c, [`"jobs/${JOB}/tasks/2/files/results.csv": it is not one of the task's own files`, `"jobs/${JOB}/secret/license": it is not one of the task's own files`]);
  });

  it('gq logs refuses a log key that is not the task\'s own', async () => {
    const c = copyHome('logs-foreign');
    writeFileSync(join(c.home, 'gq', 'artifacts', 'jobs', JOB, 'not-a-log.txt'), 'SHOULD-NOT-BE-PRINTED\n');
    setKeys(c.db, 1, { logKey: `jobs/${JOB}/not-a-log.txt` });
    c.db.close();
    const r = await gq(['logs', JOB, '1'], c.env, { cwd: work });
    expectRefused(r, ['Refusing to print the log of task 1', `"jobs/${JOB}/not-a-log.txt"`]);
    expect(r.stdout + r.stderr).not.toContain('SHOULD-NOT-BE-PRINTED');
    rmSync(c.home, { recursive: true, force: true });
  });

  it('a symbolic link in the --out folder (tasks/1 -> elsewhere)', async () => {
    const c = copyHome('out-symlink');
    mkdirSync(join(c.out, 'tasks'), { recursive: true });
    symlinkSync(c.outside, join(c.out, 'tasks', '1'));
    await expectRefusedDownload(c, [`the output folder holds a symbolic link at ${join(c.out, 'tasks', '1')}`]);
  });

  it('a symbolic link planted at --out/results.csv', async () => {
    const c = copyHome('out-results-link');
    mkdirSync(c.out, { recursive: true });
    symlinkSync(join(c.outside, 'merged.csv'), join(c.out, 'results.csv'));
    c.db.close();
    const r = await gq(['results', JOB, '--out', c.out], c.env, { cwd: work });
    expectRefused(r, [`Refusing to write through the symbolic link ${join(c.out, 'results.csv')}`]);
    expect(filesIn(c.outside)).toEqual([]);
    expect(filesIn(c.out)).toEqual(['results.csv']); // only the link itself
    rmSync(c.home, { recursive: true, force: true });
  });

  it('a symbolic link in the results folder of the artifact store (reads from outside it)', async () => {
    const c = copyHome('store-symlink');
    const secret = join(c.outside, 'private.txt');
    writeFileSync(secret, 'PRIVATE-CONTENT\n');
    const stored = join(c.home, 'gq', 'artifacts', 'jobs', JOB, 'tasks', '2', 'files', 'results.csv');
    unlinkSync(stored);
    symlinkSync(secret, stored);
    c.db.close();
    const r = await gq(['results', JOB, '--out', c.out], c.env, { cwd: work });
    expectRefused(r, ['task 2:', 'the artifact folder holds a symbolic link at']);
    expect(filesIn(c.out)).toEqual([]);
    rmSync(c.home, { recursive: true, force: true });
  });
});

// ---------------------------------------------------------------------------------------------
// AWS on moto


/** Everything gq could have created, as one comparable value. */
async function awsState(h: AwsHarness): Promise<{ objects: string[]; items: string[]; queues: string[]; groups: string[]; templates: string[] }> {
  const c = h.backend.clients;
  const objects: string[] = [];
  let token: string | undefined;
  do {
    const page = await c.s3.send(new ListObjectsV2Command({ Bucket: h.bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) objects.push(`${o.Key} ${o.Size} ${o.ETag}`);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const items: string[] = [];
  let start: Record<string, any> | undefined;
  do {
    const page = await c.dynamodb.send(new ScanCommand({ TableName: h.table, ExclusiveStartKey: start }));
    for (const i of page.Items ?? []) items.push(JSON.stringify(i));
    start = page.LastEvaluatedKey;
  } while (start);
  const queues = (await c.sqs.send(new ListQueuesCommand({}))).QueueUrls ?? [];
  const groups = ((await c.autoscaling.send(new DescribeAutoScalingGroupsCommand({}))).AutoScalingGroups ?? []).map((g) => `${g.AutoScalingGroupName} ${g.DesiredCapacity}`);
  const templates = ((await c.ec2.send(new DescribeLaunchTemplatesCommand({}))).LaunchTemplates ?? []).map((t) => `${t.LaunchTemplateName}`);
  return { objects: objects.sort(), items: items.sort(), queues: queues.sort(), groups: groups.sort(), templates: templates.sort() };
}

/** A server that answers every AWS call the way AWS answers expired STS session credentials. */
function expiredTokenServer(): Promise<{ url: string; server: Server; calls: string[] }> {
  const calls: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const action = /Action=([A-Za-z]+)/.exec(body)?.[1] ?? req.headers['x-amz-target']?.toString() ?? req.url ?? '';
      calls.push(action);
      const message = 'The security token included in the request is expired';
      res.statusCode = 400;
      if (/DescribeInstanceTypes|DescribeImages|Describe(Subnets|SecurityGroups)/.test(action)) {
        // EC2's error document.
        res.setHeader('content-type', 'text/xml');
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>ExpiredToken</Code><Message>${message}</Message></Error></Errors><RequestID>1</RequestID></Response>`);
      } else {
        // The query-protocol error document (CloudFormation, STS, Auto Scaling).
        res.setHeader('content-type', 'text/xml');
        res.end(`<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code><Message>${message}</Message></Error><RequestId>1</RequestId></ErrorResponse>`);
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as any).port}`, server, calls })));
}

describeAws('bad input, AWS backend on moto: refused before anything is created', () => {
  let h: AwsHarness;
  let noCredsEnv: NodeJS.ProcessEnv;
  const DONE = 'bad-done';

  beforeAll(async () => {
    h = (await startAwsHarness('bad-input', { jobPrefix: 'bad-' }))!;
    // No credentials anywhere: no keys, no shared files, no metadata service.
    noCredsEnv = { ...h.env, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_EC2_METADATA_DISABLED: 'true' };
    delete noCredsEnv.AWS_ACCESS_KEY_ID;
    delete noCredsEnv.AWS_SECRET_ACCESS_KEY;
    delete noCredsEnv.AWS_SESSION_TOKEN;
  }, 180_000);

  afterAll(async () => {
    await h?.stop();
  });

  /** Runs gq, expects a refusal, and that moto holds exactly what it held before. */
  async function refusedOnAws(args: string[], want: Array<string | RegExp>, env: NodeJS.ProcessEnv = h.env): Promise<CliResult> {
    const before = await awsState(h);
    const r = await gq(args, env, { cwd: work, timeoutMs: 60_000 });
    expectRefused(r, want);
    expect(await awsState(h)).toEqual(before);
    const job = args[0] === 'submit' ? args[args.indexOf('--name') + 1] : undefined;
    if (job) {
      const s = await awsState(h);
      expect(s.items.filter((i) => i.includes(`JOB#${job}`))).toEqual([]);
      expect(s.objects.filter((o) => o.startsWith(`jobs/${job}/`))).toEqual([]);
      expect(s.queues.filter((q) => q.includes(`gq-${job}-`))).toEqual([]);
    }
    return r;
  }

  it('instance types that EC2 (DescribeInstanceTypes) does not offer: each line named', async () => {
    writeFileSync(f('unknown-types.csv'), 'instance_type,command\nt3.micro,echo 1\nq9.large,echo 2\nt3.micro,echo 3\nzz7.xlarge,echo 4\nq9.large,echo 5\n');
    await refusedOnAws(sub('unknown-types.csv', '--code', 'code', '--name', 'bad-types'), [
      'The job file unknown-types.csv has 2 problems.',
      'unknown-types.csv:3: column "instance_type": EC2 does not offer the instance type "q9.large" in us-east-1; 2 tasks use it',
      'unknown-types.csv:5: column "instance_type": EC2 does not offer the instance type "zz7.xlarge" in us-east-1',
    ]);
  });

  it('instance type "local" on AWS: the line is named', async () => {
    writeFileSync(f('mixed.csv'), 'instance_type,command\nt3.micro,echo 1\nlocal,echo 2\n');
    await refusedOnAws(sub('mixed.csv', '--code', 'code', '--name', 'bad-local'), ['mixed.csv:3: column "instance_type": the instance type "local" runs tasks on this machine, but this job is for the aws backend']);
  });

  it('a region with no gq stack (--region eu-west-3)', async () => {
    await refusedOnAws(sub('aws.csv', '--code', 'code', '--name', 'bad-region', '--region', 'eu-west-3'), [/No gq stack "gq-bad-input-\d+" in eu-west-3\./, 'hint: Run `gq setup` to create it']);
  });

  it('an AMI built for another architecture than the instance type: refused at submit', async () => {
    const ssm = new SSMClient({ region: 'us-east-1', endpoint: h.moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
    const arm = (await ssm.send(new GetParameterCommand({ Name: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64' }))).Parameter!.Value!;
    ssm.destroy();
    await refusedOnAws(sub('aws.csv', '--code', 'code', '--name', 'bad-arch'), [`gq: AMI ${arm} is built for arm64, but t3.micro runs`, 'hint: Set `ami` for t3.micro'], { ...h.env, GQ_AMI: arm });
  });

  it('no AWS credentials at all', async () => {
    await refusedOnAws(sub('aws.csv', '--code', 'code', '--name', 'bad-nocreds'), ['gq: No AWS credentials found.', 'hint: Run `aws configure`'], noCredsEnv);
  });

  it('AWS_PROFILE naming a profile that does not exist', async () => {
    await refusedOnAws(sub('aws.csv', '--code', 'code', '--name', 'bad-profile'), ['The AWS profile "no-such-profile" does not exist.', 'aws configure --profile no-such-profile'], { ...noCredsEnv, AWS_PROFILE: 'no-such-profile' });
  });

  it('a profile whose credential_process returns expired credentials (an expired SSO/STS session)', async () => {
    const config = join(work, 'aws-config-expired');
    writeFileSync(
      config,
      '[profile stale]\ncredential_process = printf \'{"Version":1,"AccessKeyId":"ASIAEXPIREDEXAMPLE01","SecretAccessKey":"expired-secret-example","SessionToken":"tok","Expiration":"2001-01-01T00:00:00Z"}\'\n',
    );
    const r = await refusedOnAws(['status'], ['The AWS credentials of the AWS profile "stale" have expired', 'credential_process returned expired credentials', 'hint: Renew them'], { ...noCredsEnv, AWS_CONFIG_FILE: config, AWS_PROFILE: 'stale' });
    expect(r.stderr).not.toContain('expired-secret-example');
    await refusedOnAws(sub('aws.csv', '--code', 'code', '--name', 'bad-expired'), ['have expired'], { ...noCredsEnv, AWS_CONFIG_FILE: config, AWS_PROFILE: 'stale' });
  });

  it('AWS answering ExpiredToken (moto does not emulate it: a stub endpoint answers as AWS does)', async () => {
    const stub = await expiredTokenServer();
    try {
      const env = { ...h.env, AWS_ENDPOINT_URL: stub.url };
      for (const args of [sub('aws.csv', '--code', 'code', '--name', 'bad-token'), ['status'], ['results', 'bad-token']]) {
        const r = await gq(args, env, { cwd: work });
        expectRefused(r, ['gq: The AWS credentials have expired (ExpiredToken).', 'hint: Run `aws configure`']);
      }
      expect(stub.calls.length).toBeGreaterThan(0);
    } finally {
      stub.server.close();
    }
  });

  it.each([
    ['status', ['status', 'bad-nosuch']],
    ['results', ['results', 'bad-nosuch']],
    ['logs', ['logs', 'bad-nosuch', '1']],
    ['cancel', ['cancel', 'bad-nosuch']],
    ['retry', ['retry', 'bad-nosuch', '--failed']],
    ['clean', ['clean', 'bad-nosuch']],
  ])('gq %s of a job that does not exist', async (_c, args) => {
    await refusedOnAws(args, ['No job named "bad-nosuch".']);
  });

  describe('gq results on a finished job whose records were tampered with', () => {
    let pristineItem: string;

    beforeAll(async () => {
      const t0 = Date.now();
      writeFileSync(f('aws-done.csv'), 'instance_type,command\nt3.micro,"echo n,v > results.csv; echo 1,one >> results.csv; echo log line"\n');
      const r = await gq(sub('aws-done.csv', '--code', 'code', '--name', DONE, '--wait', '--json'), h.env, { cwd: work, timeoutMs: 150_000 });
      expect(r.code, `${r.stderr}\n${h.runtime.errors.join('\n')}`).toBe(0);
      timings['AWS 1-task job on moto'] = Date.now() - t0;
      pristineItem = (await awsState(h)).items.find((i) => i.includes(`JOB#${DONE}`) && i.includes('TASK#0000001'))!;
      expect(pristineItem).toBeDefined();
    }, 180_000);

    async function setKey(attr: 'resultKey' | 'logKey', value: string): Promise<void> {
      await h.backend.clients.dynamodb.send(
        new UpdateItemCommand({
          TableName: h.table,
          Key: { pk: { S: `JOB#${DONE}` }, sk: { S: 'TASK#0000001' } },
          UpdateExpression: 'SET #a = :v',
          ExpressionAttributeNames: { '#a': attr },
          ExpressionAttributeValues: { ':v': { S: value } },
        }),
      );
    }

    async function restore(): Promise<void> {
      await setKey('resultKey', `jobs/${DONE}/tasks/1/files/results.csv`);
      await setKey('logKey', `jobs/${DONE}/tasks/1/log.txt`);
    }

    async function refusedResults(want: string[]): Promise<void> {
      const home = testHome('bad-aws-results');
      const out = join(home, 'out');
      const outside = join(home, 'outside');
      mkdirSync(outside, { recursive: true });
      try {
        const r = await gq(['results', DONE, '--out', out], h.env, { cwd: outside });
        expectRefused(r, ['Refusing to download', 'Nothing was downloaded.', ...want]);
        expect(existsSync(out), 'out created').toBe(false);
        expect(readdirSync(outside)).toEqual([]);
        expect(readdirSync(home).sort()).toEqual(['outside']);
      } finally {
        await restore();
        rmSync(home, { recursive: true, force: true });
      }
    }

    it('the untampered job downloads', async () => {
      const home = testHome('bad-aws-results-ok');
      const r = await gq(['results', DONE, '--out', join(home, 'out')], h.env);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(join(home, 'out', 'results.csv'), 'utf8')).toBe('task,n,v\n1,1,one\n');
      rmSync(home, { recursive: true, force: true });
    });

    it('a result key with ".." (and an object stored under it)', async () => {
      const key = `jobs/${DONE}/tasks/1/files/../../../../../../escaped.csv`;
      await h.backend.clients.s3.send(new PutObjectCommand({ Bucket: h.bucket, Key: key, Body: 'escaped\n' })).catch(() => undefined);
      await setKey('resultKey', key);
      await refusedResults(['task 1:', 'it climbs out with ".."']);
    });

    it('an absolute result key', async () => {
      await setKey('resultKey', '/etc/escaped.csv');
      await refusedResults(['"/etc/escaped.csv": it is not one of the task\'s own files']);
    });

    it("a log key that names the job's licence", async () => {
      await setKey('logKey', `jobs/${DONE}/secret/license`);
      await refusedResults([`"jobs/${DONE}/secret/license": it is not one of the task's own files`]);
    });
  });
});
