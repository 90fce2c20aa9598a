/**
 * The per-attempt folders and files of workspace.ts: a task's copy of the code is its own (never
 * a hard link to the original), an empty folder an attempt left is reused only as mkdir made it,
 * a slot's log starts empty, and the run file is blanked (not removed) when its command ends.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { reapRun } from '@gq/common/local/procs';
import { emptyDir, freshLogFile, freshTaskDir, putLogAside, removeTaskDir, workspaceAt, type Workspace } from '../src/workspace.js';
import { runCommand } from '../src/process.js';

const roots: string[] = [];
function ws(): Workspace {
  const root = mkdtempSync(join(tmpdir(), 'gq-ws-'));
  roots.push(root);
  return workspaceAt(root);
}
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

describe('task folders', () => {
  it("a task's copy of the code is its own: writing into it leaves the original as it was", () => {
    const w = ws();
    mkdirSync(join(w.code, 'sub'), { recursive: true });
    writeFileSync(join(w.code, 'sub', 'data.txt'), 'original');
    const dir = freshTaskDir(w, 1, 1);
    expect(statSync(join(dir, 'sub', 'data.txt')).ino).not.toBe(statSync(join(w.code, 'sub', 'data.txt')).ino);
    writeFileSync(join(dir, 'sub', 'data.txt'), 'changed by the task'); // in place, as `>` does
    expect(readFileSync(join(w.code, 'sub', 'data.txt'), 'utf8')).toBe('original');
    removeTaskDir(dir);
    expect(readFileSync(join(freshTaskDir(w, 1, 2), 'sub', 'data.txt'), 'utf8')).toBe('original');
  });

  it('an empty folder an attempt left becomes the next one; one it changed is removed', () => {
    const w = ws();
    const kept = () => readdirSync(join(w.root, 'tasks')).filter((f) => f.startsWith('.spare-'));
    const a = freshTaskDir(w, 1, 1);
    const ino = statSync(a).ino;
    removeTaskDir(a);
    expect(existsSync(a)).toBe(false);
    expect(kept()).toHaveLength(1);
    const b = freshTaskDir(w, 2, 1);
    expect(statSync(b).ino).toBe(ino); // the same folder, renamed
    expect(kept()).toHaveLength(0);
    writeFileSync(join(b, 'left.txt'), 'x');
    removeTaskDir(b);
    expect(kept()).toHaveLength(0);
    const c = freshTaskDir(w, 3, 1);
    expect(readdirSync(c)).toEqual([]);
    chmodSync(c, 0o700); // empty but not as made: not kept
    removeTaskDir(c);
    expect(kept()).toHaveLength(0);
    expect(statSync(freshTaskDir(w, 4, 1)).mode & 0o777).not.toBe(0o700);
  });

  it('a kept folder is handed out only for the mode it was made with', () => {
    const w = ws();
    const ckpt = emptyDir(join(w.root, 'checkpoints', '1'), 0o700);
    const ino = statSync(ckpt).ino;
    removeTaskDir(ckpt);
    expect(statSync(freshTaskDir(w, 1, 1)).mode & 0o777).not.toBe(0o700);
    expect(readdirSync(join(w.root, 'checkpoints'))).toHaveLength(1); // still kept
    const again = emptyDir(join(w.root, 'checkpoints', '2'), 0o700);
    expect(statSync(again).ino).toBe(ino);
    expect(statSync(again).mode & 0o777).toBe(0o700);
  });
});

describe('slot logs and run files', () => {
  it("an attempt's log starts empty: the slot's empty one is renamed into place, anything left in it goes", () => {
    const w = ws();
    const a1 = join(w.logs, 'task-1-1.log');
    const log = freshLogFile(w, 0, a1);
    expect(log).toBe(a1);
    writeFileSync(log, '');
    const ino = statSync(log).ino;
    putLogAside(w, 0, log);
    expect(existsSync(a1)).toBe(false);
    // The next attempt of the slot gets the same (empty) file under its own name.
    const a2 = freshLogFile(w, 0, join(w.logs, 'task-2-1.log'));
    expect(statSync(a2).ino).toBe(ino);
    expect(statSync(a2).size).toBe(0);
    // A log with output is not kept aside; one left with output in the spare's place goes.
    writeFileSync(a2, 'output');
    putLogAside(w, 0, a2);
    expect(existsSync(a2)).toBe(false);
    writeFileSync(join(w.logs, 'slot-0.log'), 'from an attempt that ended before its log was handled');
    const a3 = freshLogFile(w, 0, join(w.logs, 'task-3-1.log'));
    expect(existsSync(a3)).toBe(false);
    expect(existsSync(join(w.logs, 'slot-0.log'))).toBe(false);
    // Another slot never takes this slot's spare.
    writeFileSync(a3, '');
    putLogAside(w, 0, a3);
    freshLogFile(w, 1, join(w.logs, 'task-4-1.log'));
    expect(existsSync(join(w.logs, 'slot-0.log'))).toBe(true);
  });

  it('the run file names the command while it runs and is blank after; a blank one stops nothing', async () => {
    const w = ws();
    const runFile = join(w.root, 'running');
    const p = runCommand({ command: 'sleep 0.2', cwd: w.root, env: process.env, logFile: join(w.logs, 'l.log'), timeoutSeconds: 0, runFile });
    const [pgid, token] = readFileSync(runFile, 'utf8').trim().split(' ');
    expect(Number(pgid)).toBe(p.pid);
    expect(token).toMatch(/^[0-9a-f]{24}$/);
    expect((await p.result).exitCode).toBe(0);
    expect(readFileSync(runFile, 'utf8').trim()).toBe('');
    expect(reapRun(runFile)).toBe(false);
    expect(existsSync(runFile)).toBe(false);
  });
});
