import { describe, expect, it } from 'vitest';
import type { Backend, TaskRecord } from '@gq/common';
import { followTask, type LiveRead, type LiveSource } from '../src/log-follow.js';

const base: TaskRecord = { job: 'j', task: 4, instanceType: 't', command: 'c', state: 'QUEUED', attempts: 0, tags: {}, updatedAt: '', version: 0 };

/** A status store that answers each getTask with the next record of `script` (the last one repeats). */
function scripted(script: Partial<TaskRecord>[]): Backend {
  let i = 0;
  return { status: { getTask: async () => ({ ...base, ...script[Math.min(i++, script.length - 1)] }) } } as unknown as Backend;
}

/** Live output per attempt, growing by one entry per read. */
function live(outputs: Record<number, string[]>): LiveSource {
  const reads: Record<number, number> = {};
  return {
    async read(t): Promise<LiveRead | undefined> {
      const all = outputs[t.attempts];
      if (!all) return undefined;
      const n = Math.min((reads[t.attempts] = (reads[t.attempts] ?? 0) + 1), all.length);
      return { from: 0, bytes: Buffer.from(all.slice(0, n).join('')), final: false };
    },
  };
}

async function follow(script: Partial<TaskRecord>[], source: LiveSource, finalLog: (t: TaskRecord) => string | undefined) {
  let out = '';
  const notes: string[] = [];
  const end = await followTask(scripted(script), 'j', 4, source, {
    out: (b) => (out += b.toString()),
    note: (l) => notes.push(l),
    finalLog: async (t) => {
      const l = finalLog(t);
      return l === undefined ? undefined : Buffer.from(l);
    },
  }, 0);
  return { out, notes, end };
}

describe('followTask', () => {
  it('waits for a queued task, prints each new byte once, and the rest from the final log', async () => {
    const running = { state: 'RUNNING' as const, attempts: 1, instance: 'w1' };
    const r = await follow(
      [{}, running, running, running, { state: 'SUCCEEDED', attempts: 1, lastInstance: 'w1', exitCode: 0 }],
      live({ 1: ['a\n', 'b\n', 'c\n'] }),
      () => 'a\nb\nc\nd\n',
    );
    expect(r.out).toBe('a\nb\nc\nd\n');
    expect(r.end.state).toBe('SUCCEEDED');
    expect(r.notes[0]).toMatch(/queued; waiting/);
  });

  it('follows a failed attempt into its retry, and ends with the task', async () => {
    const r = await follow(
      [
        { state: 'RUNNING', attempts: 1, instance: 'w1' },
        { state: 'QUEUED', attempts: 1, exitCode: 2 },
        { state: 'RUNNING', attempts: 2, instance: 'w2' },
        { state: 'FAILED', attempts: 2, exitCode: 2 },
      ],
      live({ 1: ['one\n'], 2: ['two\n'] }),
      (t) => (t.attempts === 1 ? 'one\n' : 'two\n'),
    );
    expect(r.out).toBe('one\ntwo\n');
    expect(r.end.state).toBe('FAILED');
    expect(r.notes.join('\n')).toMatch(/attempt 1 of task 4 ended, exit code 2; the task is tried again/);
  });

  it('prints a finished task\'s log at once, and says when the live log skipped output', async () => {
    expect((await follow([{ state: 'CANCELLED', attempts: 1 }], live({}), () => 'all\n')).out).toBe('all\n');
    const skipping: LiveSource = { read: async () => ({ from: 100, bytes: Buffer.from('tail\n'), final: true }) };
    const r = await follow([{ state: 'RUNNING', attempts: 1 }, { state: 'SUCCEEDED', attempts: 1 }], skipping, () => 'x');
    expect(r.out).toBe('tail\n');
    expect(r.notes.join('\n')).toMatch(/100 bytes of output not kept/);
  });
});
