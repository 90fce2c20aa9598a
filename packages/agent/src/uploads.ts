/** Upload what a finished attempt produced: results file, declared extra outputs, the log. */
import { existsSync, lstatSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { keys, type ArtifactStore } from '@gq/common';

/** Files under `rel` (a file or a folder) inside `dir`, refusing anything that resolves outside it. */
export function filesUnder(dir: string, rel: string): string[] {
  const root = realpathSync(dir);
  const start = join(dir, rel);
  if (!existsSync(start)) return [];
  const inside = (p: string) => {
    const r = relative(root, realpathSync(p));
    return r !== '' && !r.startsWith('..') && !r.startsWith(sep);
  };
  const out: string[] = [];
  const walk = (abs: string) => {
    const st = lstatSync(abs);
    if (st.isSymbolicLink()) {
      if (!inside(abs)) return; // a link out of the task's folder is never uploaded
      if (statSync(abs).isDirectory()) return;
    }
    if (st.isDirectory()) {
      for (const e of readdirSync(abs).sort()) walk(join(abs, e));
    } else if (inside(abs)) {
      out.push(relative(dir, abs).split(sep).join('/'));
    }
  };
  walk(start);
  return out;
}

export interface Uploaded {
  resultKey?: string;
  outputKeys: string[];
}

export async function uploadOutputs(
  artifacts: ArtifactStore,
  job: string,
  task: number,
  taskDir: string,
  resultsPath: string,
  outputs: readonly string[],
): Promise<Uploaded> {
  let resultKey: string | undefined;
  const resultFile = join(taskDir, resultsPath);
  if (existsSync(resultFile) && statSync(resultFile).isFile() && filesUnder(taskDir, resultsPath).length === 1) {
    resultKey = keys.taskOutput(job, task, resultsPath);
    await artifacts.putFile(resultKey, resultFile);
  }
  const outputKeys: string[] = [];
  for (const o of outputs) {
    for (const rel of filesUnder(taskDir, o)) {
      const key = keys.taskOutput(job, task, rel);
      await artifacts.putFile(key, join(taskDir, rel));
      outputKeys.push(key);
    }
  }
  return { resultKey, outputKeys };
}
