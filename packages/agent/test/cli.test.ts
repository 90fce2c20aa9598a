/**
 * gq-agent's command line (cli.ts, node:util parseArgs): help, and a clear error with a hint
 * (exit 1) for a missing command, an unknown command or option, a missing required option, a
 * value outside its choices; `tag` takes its key and value as given, even a value that starts
 * with '-'.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../bin/gq-agent.js', import.meta.url));

function agent(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GQ_')));
    execFile(process.execPath, [BIN, ...args], { env: { ...clean, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('gq-agent command line', () => {
  it('--help lists the commands; run --help lists its options', async () => {
    const top = await agent(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/gq-agent run/);
    expect(top.stdout).toMatch(/gq-agent tag <key> <value>/);
    const run = await agent(['run', '--help']);
    expect(run.code).toBe(0);
    for (const o of ['--backend', '--job', '--instance-type', '--task-user', '--on-demand', '--root-volume-gb']) expect(run.stdout).toContain(o);
  });

  it('refuses what it cannot run, saying what is wrong and how to get help', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /Name a command: run or tag/],
      [['frob'], /Unknown command: frob/],
      [['run', '--job', 'j'], /Missing required argument: backend/],
      [['run', '--backend', 'gcp', '--job', 'j'], /Argument: backend, Given: "gcp", Choices: "local", "aws"/],
      [['run', '--backend', 'local', '--job', 'j', '--retrys', '3'], /Unknown option '--retrys'/],
      [['run', '--backend', 'aws', '--job', 'j', '--root-volume-gb', 'big'], /--root-volume-gb must be a number/],
      [['tag', 'percent_complete'], /needs a key and a value/],
    ];
    for (const [args, want] of cases) {
      const r = await agent(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(want);
      expect(r.stderr).toMatch(/^hint: /m);
      expect(r.stderr).not.toMatch(/internal error/);
    }
  });

  it('tag takes a value that starts with "-" as the value (outside a task it says where it must run)', async () => {
    const r = await agent(['tag', 'delta', '-5']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/must be called from inside a task run by gq/);
  });
});
