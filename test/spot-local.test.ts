/**
 * The checkpoint folder on the local backend, with the real CLI and worker processes: a worker
 * stopped twice (SIGTERM, SIGTERM: the local analogue of a Spot interruption, which gives the
 * running task back) saves the task's checkpoint, and the next worker's attempt resumes from it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openLocalBackend } from '../packages/common/src/local/index.js';
import { keys } from '../packages/common/src/index.js';
import { gq, gqEnv, killAll, pidsMatching, statusJson, testHome, waitFor } from './support/cli.js';
import { countedRange, countingTask } from './support/counting-task.js';

const homes: string[] = [];
afterEach(async () => {
  for (const h of homes.splice(0)) {
    const left = await waitFor('workers to exit', async () => pidsMatching(h).length === 0, 20_000).catch(() => false);
    expect(killAll(h)).toBe(0);
    expect(left, `processes left running for ${h}`).toBe(true);
  }
});

describe('local backend: checkpoints', () => {
  it('a worker stopped twice saves the checkpoint; the next attempt counts on from it', async () => {
    const home = testHome('spot-local');
    homes.push(home);
    const code = join(home, 'code');
    mkdirSync(code, { recursive: true });
    writeFileSync(join(code, 'README'), 'checkpoint\n');
    const env = gqEnv(home, { GQ_VISIBILITY: '3' });
    const job = 'sl-ckpt';
    const progress = join(home, 'progress');
    const starts = join(home, 'starts');
    const f = join(home, 'jobs.csv');
    writeFileSync(f, `instance_type,command\nlocal,"${countingTask({ to: 15, stepS: 0.2, starts, progress }).replace(/"/g, `""`)}"\n`);
    expect((await gq(['submit', f, '--code', code, '--name', job, '--workers', '1', '--json'], env)).code).toBe(0);
    await waitFor('the first attempt to count to 3', async () => existsSync(progress) && Number(readFileSync(progress, 'utf8')) >= 3, 30_000, 100);
    const victim = (await statusJson(job, env)).running[0].instance as string;
    const [pid] = pidsMatching(`--instance ${victim}`);
    process.kill(pid!, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    process.kill(pid!, 'SIGTERM');
    const backend = openLocalBackend({ home: env.GQ_HOME! });
    try {
      const back = await waitFor('task 1 to be given back', async () => {
        const t = await backend.status.getTask(job, 1);
        return t?.state === 'QUEUED' ? t : undefined;
      }, 20_000, 100);
      // A worker stopped is not an interrupted instance: given back, checkpoint saved, none counted.
      expect(back).toMatchObject({ attempts: 0, checkpointKey: keys.taskCheckpoint(job, 1) });
      expect(back.interruptions).toBeUndefined();
      // gq status starts a worker for the task given back; it resumes.
      const done = await waitFor('the job to finish', async () => {
        const st = await statusJson(job, env, true);
        return st.counts.succeeded === 1 ? st : undefined;
      }, 60_000, 500);
      expect(done.tasks[0]).toMatchObject({ state: 'SUCCEEDED', attempts: 1 });
      const t = (await backend.status.getTask(job, 1))!;
      const { start, end } = countedRange((await backend.artifacts.getBytes(t.resultKey!)).toString('utf8'));
      expect(start).toBeGreaterThanOrEqual(3);
      expect(end).toBe(15);
      expect(readFileSync(starts, 'utf8').trim().split('\n')).toEqual(['0', String(start)]);
    } finally {
      await backend.close();
    }
  }, 120_000);
});
