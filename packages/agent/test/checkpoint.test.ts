/**
 * The checkpoint folder (checkpoint.ts): packing and unpacking with its limits, and in the agent
 * loop on the local backend: an attempt interrupted by a Spot notice saves the folder before the
 * release is recorded, the next attempt (another worker) finds it and resumes, the interruption is
 * counted and not charged.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, keys } from '@gq/common';
import { LocalArtifactStore } from '@gq/common/local/artifact-store';
import { restoreCheckpoint, saveCheckpoint } from '../src/checkpoint.js';
import { countedRange, countingTask } from '../../../test/support/counting-task.js';
import { InProcess, until, wrap } from './in-process.js';

const log = createLogger({ level: 'silent' });
const dirs: string[] = [];
const t = new InProcess();
afterEach(async () => {
  await t.cleanup();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function scratch(): { root: string; store: LocalArtifactStore; dir: string } {
  const root = mkdtempSync(join(tmpdir(), 'gq-ckpt-'));
  dirs.push(root);
  const dir = join(root, 'ckpt');
  mkdirSync(dir);
  return { root, store: new LocalArtifactStore(join(root, 'store')), dir };
}

describe('checkpoint folder: save and restore', () => {
  it('keeps files and folders, not links; restores them into a fresh folder', async () => {
    const { root, store, dir } = scratch();
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'model.sol'), 'x 1\n');
    writeFileSync(join(dir, 'sub', 'count'), '7');
    writeFileSync(join(root, 'secret'), 'not to be saved');
    symlinkSync(join(root, 'secret'), join(dir, 'link'));
    const key = await saveCheckpoint(store, 'cj', 4, dir, log);
    expect(key).toBe(keys.taskCheckpoint('cj', 4));
    expect(existsSync(`${dir}.tar.gz`)).toBe(false); // the packed file is not left behind

    const into = join(root, 'next');
    mkdirSync(into);
    expect(await restoreCheckpoint(store, key!, into, log)).toBe(true);
    expect(readFileSync(join(into, 'model.sol'), 'utf8')).toBe('x 1\n');
    expect(readFileSync(join(into, 'sub', 'count'), 'utf8')).toBe('7');
    expect(existsSync(join(into, 'link'))).toBe(false);
  });

  // Needs root, as the agent on EC2: the folder is read as the task user, never as root.
  it.skipIf(process.getuid?.() !== 0)('reads the folder as the task user: a file only root may read is not saved', async () => {
    const { store, dir } = scratch();
    const nobody = { name: 'nobody', uid: 65534, gid: 65534 };
    chmodSync(join(dir, '..'), 0o755);
    writeFileSync(join(dir, 'mine'), 'ok');
    chownSync(dir, nobody.uid, nobody.gid);
    chownSync(join(dir, 'mine'), nobody.uid, nobody.gid);
    expect(await saveCheckpoint(store, 'cj', 5, dir, log, nobody)).toBe(keys.taskCheckpoint('cj', 5));
    writeFileSync(join(dir, 'root-only'), 'secret', { mode: 0o600 });
    expect(await saveCheckpoint(store, 'cj', 6, dir, log, nobody)).toBeUndefined();
  });

  it('saves nothing for an empty folder, one over the size limit, or one not stored in time', async () => {
    const { store, dir } = scratch();
    expect(await saveCheckpoint(store, 'cj', 1, dir, log)).toBeUndefined();
    writeFileSync(join(dir, 'big'), Buffer.alloc(2048));
    expect(await saveCheckpoint(store, 'cj', 1, dir, log, undefined, { maxBytes: 1024, timeoutMs: 10_000 })).toBeUndefined();
    const slow = wrap(store, { putFile: () => new Promise<void>((r) => setTimeout(r, 2000)) });
    const t0 = Date.now();
    expect(await saveCheckpoint(slow, 'cj', 1, dir, log, undefined, { maxBytes: 1e6, timeoutMs: 200 })).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(await store.exists(keys.taskCheckpoint('cj', 1))).toBe(false);
  });

  it('a checkpoint that cannot be read leaves an empty folder (the attempt starts afresh)', async () => {
    const { store, dir } = scratch();
    writeFileSync(join(dir, 'left-over'), '1');
    await store.putBytes(keys.taskCheckpoint('cj', 2), 'not a tar file');
    expect(await restoreCheckpoint(store, keys.taskCheckpoint('cj', 2), dir, log)).toBe(false);
    expect(existsSync(dir)).toBe(true);
    expect(existsSync(join(dir, 'left-over'))).toBe(false);
  });
});

describe('agent loop: a Spot notice saves the checkpoint, the next attempt resumes from it', () => {
  it('counts on from where the interrupted attempt stopped; interruption counted, not charged', async () => {
    const f = await t.job('ckpt', (home) => [countingTask({ to: 12, stepS: 0.1, starts: join(home, 'starts') })]);
    const w1 = await t.start(f, 'w-ckpt-1');
    const count1 = join(f.home, 'work', 'w-ckpt-1', 'checkpoints', '1', 'count');
    await until('the first attempt to count to 3', () => existsSync(count1) && Number(readFileSync(count1, 'utf8')) >= 3);
    w1.agent.interrupt('release');
    expect(await w1.done).toMatchObject({ reason: 'interrupted' });
    const back = (await f.backend.status.getTask(f.job, 1))!;
    expect(back).toMatchObject({ state: 'QUEUED', attempts: 0, interruptions: 1, checkpointKey: keys.taskCheckpoint(f.job, 1) });

    const w2 = await t.start(f, 'w-ckpt-2');
    await until('the task to finish', async () => (await f.backend.status.getTask(f.job, 1))?.state === 'SUCCEEDED');
    w2.agent.drain();
    await w2.done;
    const done = (await f.backend.status.getTask(f.job, 1))!;
    expect(done).toMatchObject({ attempts: 1, interruptions: 1 });
    const { start, end } = countedRange((await f.backend.artifacts.getBytes(done.resultKey!)).toString('utf8'));
    expect(start).toBeGreaterThanOrEqual(3); // resumed, not started over
    expect(end).toBe(12);
    expect(readFileSync(join(f.home, 'starts'), 'utf8').trim().split('\n')).toEqual(['0', String(start)]);
  });
});
