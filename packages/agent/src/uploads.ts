/** Upload what a finished attempt produced: results file, declared extra outputs, the log. */
import { existsSync, lstatSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { GqError, keys, type ArtifactStore } from '@gq/common';
import { isInside } from '@gq/common/safe-path';

/** Files under `rel` (a file or a folder) inside `dir`, refusing anything that resolves outside it. */
export function filesUnder(dir: string, rel: string): string[] {
  const root = realpathSync(dir);
  const start = join(dir, rel);
  if (!existsSync(start)) return [];
  const inside = (p: string) => isInside(root, realpathSync(p));
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

/** S3 keys are at most 1024 bytes of UTF-8 (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html). */
export const MAX_KEY_BYTES = 1024;
/**
 * The output keys a task records (in its DynamoDB item, at most 400 KB with a command of up to
 * 128 KiB, tags and a stderr tail) are at most this many bytes in all.
 */
export const MAX_OUTPUT_KEYS_BYTES = 128 * 1024;

/** A finished attempt's outputs that cannot be stored or recorded: the task fails for good. */
export class OutputsRefusedError extends GqError {}

/** The keys of a task's output files, or why they cannot be kept (checked before any upload). */
export function outputKeysFor(job: string, task: number, files: readonly string[]): string[] {
  const out = files.map((rel) => keys.taskOutput(job, task, rel));
  const long = out.find((k) => Buffer.byteLength(k, 'utf8') > MAX_KEY_BYTES);
  if (long) {
    throw new OutputsRefusedError(
      `the task wrote ${long.slice(keys.taskOutput(job, task, '').length, 200)}..., whose storage key would be ${Buffer.byteLength(long, 'utf8')} bytes (S3 allows ${MAX_KEY_BYTES}): use shorter file names`,
    );
  }
  const bytes = out.reduce((n, k) => n + Buffer.byteLength(k, 'utf8'), 0);
  if (bytes > MAX_OUTPUT_KEYS_BYTES) {
    throw new OutputsRefusedError(
      `the task wrote ${files.length} files under its outputs; their names take ${Math.ceil(bytes / 1024)} KiB and gq records at most ${MAX_OUTPUT_KEYS_BYTES / 1024} KiB per task: pack them into one archive`,
    );
  }
  return out;
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
  const files = outputs.flatMap((o) => filesUnder(taskDir, o));
  const outputKeys = outputKeysFor(job, task, files);
  const resultFile = join(taskDir, resultsPath);
  if (existsSync(resultFile) && statSync(resultFile).isFile() && filesUnder(taskDir, resultsPath).length === 1) {
    resultKey = keys.taskOutput(job, task, resultsPath);
    await artifacts.putFile(resultKey, resultFile);
  }
  for (const [i, rel] of files.entries()) await artifacts.putFile(outputKeys[i]!, join(taskDir, rel));
  return { resultKey, outputKeys };
}
