/** A job on a fresh local backend, made through the ports (no CLI, no worker started). */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';
import type { JobSpec } from '@gq/common';
import { openLocalBackend, type LocalBackend } from '@gq/common/local/index';

export const TYPE = 'local';

export interface Fixture {
  home: string;
  backend: LocalBackend;
  job: string;
}

/**
 * A job of `commands` (or of commands made from the test's folder) on a fresh local backend: spec
 * and tasks recorded, code uploaded, messages sent. `clock`: the queue's and status store's time.
 */
export async function makeLocalJob(
  label: string,
  commandsOf: string[] | ((home: string) => string[]),
  over: Partial<JobSpec> = {},
  clock?: () => number,
): Promise<Fixture> {
  const home = mkdtempSync(join(tmpdir(), `gq-agent-${label}-`));
  const commands = typeof commandsOf === 'function' ? commandsOf(home) : commandsOf;
  const backend = openLocalBackend({ home: join(home, 'gq'), clock });
  const code = join(home, 'code');
  mkdirSync(code);
  writeFileSync(join(code, 'README'), 'agent loop test\n');
  const bundle = join(home, 'code.tar.gz');
  await tar.c({ gzip: true, file: bundle, cwd: code }, ['.']);
  const job = `al-${label}`;
  const codeKey = `code/${label}.tar.gz`;
  await backend.artifacts.putFile(codeKey, bundle);
  const spec: JobSpec = {
    name: job,
    backend: 'local',
    createdAt: new Date().toISOString(),
    total: commands.length,
    instanceTypes: { [TYPE]: commands.length },
    codeKey,
    resultsPath: 'results.csv',
    outputs: [],
    maxAttempts: 3,
    timeoutSeconds: 0,
    installTimeoutSeconds: 60,
    installAttempts: 1,
    visibilitySeconds: 30,
    idleSeconds: 600,
    ...over,
  };
  await backend.status.createJob(spec, commands.map((command, i) => ({ task: i + 1, instanceType: TYPE, command })));
  const q = await backend.queues.ensure(job, TYPE, { visibilitySeconds: spec.visibilitySeconds, maxReceiveCount: 10 });
  await q.send(commands.map((_, i) => i + 1));
  return { home, backend, job };
}

