import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, decodeLiveChunk, keys, registerSecret, type ArtifactStore } from '@gq/common';
import { liveChunk, startLiveLog } from '../src/live-log.js';
import { FakeClock } from './fake-clock.js';

/** An artifact store that keeps what was put and counts the puts. */
function store() {
  const objects = new Map<string, Buffer>();
  let puts = 0;
  const artifacts = {
    async putBytes(key: string, body: Uint8Array | string) {
      puts++;
      objects.set(key, Buffer.from(body));
    },
  } as unknown as ArtifactStore;
  return { artifacts, objects, puts: () => puts };
}

const KEY = keys.taskLiveLog('j', 3);

function setUp() {
  const file = join(mkdtempSync(join(tmpdir(), 'gq-live-')), 'task-3-1.log');
  const clock = new FakeClock(Date.parse('2026-01-01T00:00:00Z'));
  const s = store();
  const live = startLiveLog({ artifacts: s.artifacts, job: 'j', task: 3, attempt: 1, startedAt: 'T', file, log: createLogger({ level: 'silent' }), clock, everyMs: 5000, windowBytes: 16 });
  return { file, clock, s, live, chunk: () => decodeLiveChunk(s.objects.get(KEY)!) };
}

describe('the live log of a running attempt', () => {
  it('sends the tail every period, only when new output arrived, and the last bytes marked final', async () => {
    const { file, clock, s, live, chunk } = setUp();
    await clock.advance(5000);
    expect(s.puts()).toBe(0); // no log file yet
    writeFileSync(file, 'hello\n');
    await clock.advance(5000);
    expect(chunk()).toMatchObject({ attempt: 1, startedAt: 'T', from: 0, to: 6, final: false });
    expect(chunk()!.bytes.toString()).toBe('hello\n');
    await clock.advance(15_000);
    expect(s.puts()).toBe(1); // nothing new: nothing sent
    appendFileSync(file, 'a longer second line\n');
    await clock.advance(5000);
    // The window's 16 bytes: the tail, with its offsets in the whole log.
    expect(chunk()).toMatchObject({ from: 27 - 16, to: 27 });
    expect(chunk()!.bytes.toString()).toBe('ger second line\n'.slice(-16));
    appendFileSync(file, 'end\n');
    await live.stop();
    expect(chunk()).toMatchObject({ to: 31, final: true });
    expect(s.puts()).toBe(3);
  });

  it('sends nothing at the end of an attempt that never sent a live log (it is followed from its final log)', async () => {
    const { file, s, live } = setUp();
    writeFileSync(file, 'quick\n');
    await live.stop();
    expect(s.puts()).toBe(0);
  });

  it('masks secrets byte for byte, one cut by the window too, and holds back what may be a secret being written', () => {
    registerSecret('S3cr3tLicenceKey');
    const file = join(mkdtempSync(join(tmpdir(), 'gq-live-')), 'log');
    writeFileSync(file, 'key S3cr3tLicenceKey ok\n');
    // The window starts inside the secret: the part it holds is masked as well.
    const c = liveChunk(file, 24, 12, false);
    expect(c).toMatchObject({ from: 12, to: 24 });
    expect(c.bytes.toString()).toBe('********* ok\n'.slice(-12));
    writeFileSync(file, 'x S3cr3tL');
    // The end may be the start of the secret: held back until more follows, sent at the end.
    expect(liveChunk(file, 10, 100, false)).toMatchObject({ from: 0, to: 2 });
    expect(liveChunk(file, 10, 100, true).bytes.toString()).toBe('x S3cr3tL');
  });
});
