/**
 * A task's checkpoint folder (GQ_CHECKPOINT_DIR): outside the attempt's fresh copy of the code, so
 * a long run (a Gurobi MIP) can leave its progress there. When an attempt is interrupted (a Spot
 * notice, or a worker stopped twice) the agent packs the folder, once the task's process group
 * has been stopped (its files are still), and stores it under the task's key; the next attempt,
 * wherever it runs, finds it unpacked in its own GQ_CHECKPOINT_DIR.
 *
 * Bounded, since EC2 gives a Spot instance two minutes: a folder over `maxBytes` is not saved (the
 * previous checkpoint stays), and packing plus upload give up after `timeoutMs`. A save that did
 * not finish leaves the previous checkpoint whole: S3 and the local store replace an object only
 * once it is complete. Only regular files and folders are restored (no links, devices or owners),
 * and the folder is read as the task user (pack), never as root.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { join } from 'node:path';
import * as tar from 'tar';
import { GqError, keys, type ArtifactStore, type Logger } from '@gq/common';
import { chownTree, ownedDir, type TaskUser } from './task-user.js';
import { emptyDir, type Workspace } from './workspace.js';
import { persist } from './retry.js';

/** The most a checkpoint folder may hold (bytes of its files) to be saved. */
export const MAX_CHECKPOINT_BYTES = 2 * 1024 ** 3;
/**
 * How long packing and uploading a checkpoint may take. EC2 gives a Spot instance two minutes
 * after its notice (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html);
 * the agent sees it within 2 s, the task then has 10 s to stop (process.ts grace), and the
 * release must still be recorded after the save.
 */
export const CHECKPOINT_SAVE_MS = 60_000;

export interface CheckpointLimits {
  maxBytes: number;
  timeoutMs: number;
}

const DEFAULT_LIMITS: CheckpointLimits = { maxBytes: MAX_CHECKPOINT_BYTES, timeoutMs: CHECKPOINT_SAVE_MS };

/**
 * Pack `dir` into `file` (gzip, fast level). The folder belongs to the task, and the agent runs as
 * root on EC2: `tar` reads it as the task user (`user`), so a link the task planted (to
 * /etc/shadow, say) reads only what the task itself may read; root only compresses the stream.
 * GNU tar stores links as links (restoreCheckpoint drops them). Its exit code 1 means "a file
 * changed while read", a warning; the process group is stopped by then anyway.
 */
async function pack(dir: string, file: string, maxBytes: number, signal: AbortSignal, user?: TaskUser): Promise<void> {
  const child = spawn('tar', ['-c', '-f', '-', '-C', dir, '.'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    signal,
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString('utf8')).slice(-2000)));
  let bytes = 0;
  const limit = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      done(bytes > maxBytes * 1.1 + 1024 * 1024 ? new CheckpointTooLargeError(`the checkpoint grew past ${maxBytes} bytes while packed`) : null, chunk);
    },
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  await pipeline(child.stdout, limit, createGzip({ level: 1 }), createWriteStream(file, { mode: 0o600 }));
  const code = await exited;
  if (code !== 0 && code !== 1) throw new GqError(`tar could not pack the checkpoint folder (exit ${code}): ${stderr.trim()}`);
}

class CheckpointTooLargeError extends GqError {}

/** Bytes of the regular files under `dir` (links and special files are not kept, not counted). */
export function folderBytes(dir: string): number {
  let n = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) n += folderBytes(p);
    else if (st.isFile()) n += st.size;
  }
  return n;
}

/** The checkpoint folder of `task` on this worker: empty, owned by the task user when there is one. */
export function checkpointDir(ws: Workspace, task: number, user?: TaskUser): string {
  const dir = join(ws.root, 'checkpoints', String(task));
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  if (user) return ownedDir(dir, user);
  return emptyDir(dir, 0o700);
}

/**
 * Unpack the task's stored checkpoint into `dir` (fresh from checkpointDir). A checkpoint that
 * cannot be read is logged and the attempt starts without it: a task must work from an empty
 * folder anyway (its first attempt has one).
 */
export async function restoreCheckpoint(artifacts: ArtifactStore, key: string, dir: string, log: Logger, user?: TaskUser): Promise<boolean> {
  const file = `${dir}.tar.gz`;
  try {
    await persist('download the checkpoint', () => artifacts.getFile(key, file), { log, deadlineMs: 5 * 60_000 });
    await tar.x({
      file,
      cwd: dir,
      strict: true,
      preserveOwner: false,
      filter: (_p, entry) => 'type' in entry && (entry.type === 'File' || entry.type === 'Directory'),
    });
    if (user) chownTree(dir, user);
    log.info({ key }, 'checkpoint restored');
    return true;
  } catch (e) {
    log.warn({ err: e, key }, 'could not restore the checkpoint; the attempt starts without it');
    rmSync(dir, { recursive: true, force: true });
    if (user) ownedDir(dir, user);
    else mkdirSync(dir, { recursive: true, mode: 0o700 });
    return false;
  } finally {
    rmSync(file, { force: true });
  }
}

/**
 * Pack `dir` and store it as the task's checkpoint; its key, or undefined when there was nothing
 * to save, it was too large, or it could not be stored in time (the previous one stays then).
 */
export async function saveCheckpoint(
  artifacts: ArtifactStore,
  job: string,
  task: number,
  dir: string,
  log: Logger,
  user?: TaskUser,
  limits: CheckpointLimits = DEFAULT_LIMITS,
): Promise<string | undefined> {
  let bytes: number;
  try {
    if (readdirSync(dir).length === 0) return undefined;
    bytes = folderBytes(dir);
  } catch {
    return undefined; // no folder: nothing written
  }
  if (bytes > limits.maxBytes) {
    log.warn({ bytes, maxBytes: limits.maxBytes }, 'checkpoint folder too large to save in time; the previous checkpoint stays');
    return undefined;
  }
  const key = keys.taskCheckpoint(job, task);
  const file = `${dir}.tar.gz`;
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => {
      abort.abort();
      resolve('timeout');
    }, limits.timeoutMs);
  });
  const t0 = Date.now();
  const save = (async () => {
    await pack(dir, file, limits.maxBytes, abort.signal, user);
    await persist('upload the checkpoint', () => artifacts.putFile(key, file), { log, signal: abort.signal, deadlineMs: limits.timeoutMs });
    return 'saved' as const;
  })();
  let r: 'saved' | 'timeout' | undefined;
  try {
    r = await Promise.race([save, timeout]);
  } catch (e) {
    log.warn({ err: e }, 'could not save the checkpoint; the previous checkpoint stays');
  } finally {
    clearTimeout(timer);
  }
  if (r === 'timeout') {
    log.warn({ bytes, timeoutMs: limits.timeoutMs }, 'checkpoint not saved in time; the previous checkpoint stays');
    // The upload may still be reading the file: removed once it is done.
    void save.catch(() => undefined).finally(() => rmSync(file, { force: true }));
    return undefined;
  }
  rmSync(file, { force: true });
  if (r !== 'saved') return undefined;
  log.info({ key, bytes, ms: Date.now() - t0 }, 'checkpoint saved');
  return key;
}
