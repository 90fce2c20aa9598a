import { lstatSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '@gq/common';
import { chownTree, drainTagSpool, ownedDir, resolveTaskUser, spoolTag, taskUserEnv } from '../src/task-user.js';

const ids = (table: Record<string, [number, number]>) => (args: string[]) => {
  const u = table[args[1]!];
  if (!u) throw new Error('no such user');
  return `${args[0] === '-u' ? u[0] : u[1]}\n`;
};

describe('resolveTaskUser', () => {
  it('reads the ids through `id` (injectable), and refuses root, unknown users and bad names', () => {
    const id = ids({ 'gq-task': [998, 997], root: [0, 0] });
    expect(resolveTaskUser('gq-task', id)).toEqual({ name: 'gq-task', uid: 998, gid: 997 });
    expect(() => resolveTaskUser('root', id)).toThrow(/root/);
    expect(() => resolveTaskUser('nobody-here', id)).toThrow(UserError);
    expect(() => resolveTaskUser('a b; rm -rf /', id)).toThrow(/not a user name/);
  });
});

describe('taskUserEnv', () => {
  const user = { name: 'gq-task', uid: 998, gid: 997 };
  const env = {
    PATH: '/usr/bin',
    HOME: '/root',
    USER: 'root',
    AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'secret',
    AWS_SESSION_TOKEN: 'token',
    AWS_PROFILE: 'admin',
    AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://169.254.170.2/creds',
    AWS_REGION: 'us-east-1',
    GQ_JOB: 'j',
  };

  it('gives the task its own HOME and user, and no AWS credentials by default', () => {
    const out = taskUserEnv(env, user, '/w/home', false);
    expect(out).toMatchObject({ HOME: '/w/home', USER: 'gq-task', LOGNAME: 'gq-task', PATH: '/usr/bin', AWS_REGION: 'us-east-1', GQ_JOB: 'j' });
    expect(Object.keys(out).filter((k) => /CREDENTIALS|KEY|TOKEN|PROFILE/.test(k))).toEqual([]);
    expect(out.AWS_EC2_METADATA_DISABLED).toBe('true');
    expect(env.AWS_ACCESS_KEY_ID).toBe('AKIAEXAMPLE'); // the agent's own environment is untouched
  });

  it('keeps them with --task-aws-access', () => {
    const out = taskUserEnv(env, user, '/w/home', true);
    expect(out).toMatchObject({ AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SESSION_TOKEN: 'token', HOME: '/w/home' });
    expect(out.AWS_EC2_METADATA_DISABLED).toBeUndefined();
  });
});

describe('tag spool', () => {
  it('hands tags over in order, once, and drops what is not a tag', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gq-spool-'));
    spoolTag(dir, { key: 'percent_complete', value: '10' });
    spoolTag(dir, { key: 'percent_complete', value: '20' });
    writeFileSync(join(dir, '0-junk.json'), '{not json');
    writeFileSync(join(dir, '1-big.json'), JSON.stringify({ key: 'k', value: 'x'.repeat(5000) }));
    writeFileSync(join(dir, '2-half.tmp'), '{"key":"k","value":"v"}'); // still being written: left alone
    const secret = join(dir, '..', `gq-spool-secret-${process.pid}.json`);
    writeFileSync(secret, '{"key":"stolen","value":"root only"}');
    symlinkSync(secret, join(dir, '3-link.json')); // a link is never followed
    expect(drainTagSpool(dir)).toEqual([
      { key: 'percent_complete', value: '10' },
      { key: 'percent_complete', value: '20' },
    ]);
    expect(readdirSync(dir)).toEqual(['2-half.tmp']);
    expect(drainTagSpool(dir)).toEqual([]);
    expect(drainTagSpool(join(dir, 'missing'))).toEqual([]);
  });
});

const root = process.getuid?.() === 0;
(root ? describe : describe.skip)('ownership (as root)', () => {
  const nobody = { name: 'nobody', uid: Number(execFileSync('id', ['-u', 'nobody']).toString()), gid: Number(execFileSync('id', ['-g', 'nobody']).toString()) };

  it('gives a task folder to the task user without following links out of it', () => {
    const base = mkdtempSync(join(tmpdir(), 'gq-chown-'));
    const outside = join(base, 'outside.txt');
    writeFileSync(outside, 'not the task user\'s');
    const tree = join(base, 'task');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    writeFileSync(join(tree, 'sub', 'f'), 'x');
    symlinkSync(outside, join(tree, 'link'));
    chownTree(tree, nobody);
    for (const p of [tree, join(tree, 'sub'), join(tree, 'sub', 'f')]) expect(statSync(p).uid).toBe(nobody.uid);
    expect(lstatSync(join(tree, 'link')).uid).toBe(nobody.uid);
    expect(statSync(outside).uid).toBe(0);
    const home = ownedDir(join(base, 'a', 'home'), nobody);
    expect(statSync(home).uid).toBe(nobody.uid);
    expect(statSync(home).mode & 0o777).toBe(0o700);
    expect(statSync(join(base, 'a')).mode & 0o005).toBe(0o005); // its parent lets it through
  });
});
