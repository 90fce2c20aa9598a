/**
 * The agent's folders on its machine:
 *   <root>/code            the unpacked code bundle (never run in)
 *   <root>/tasks/<t>-<a>   a fresh copy of code for task t, attempt a (removed afterwards, or kept
 *                          empty as <root>/tasks/.spare-*: see emptyDir): each slot's task runs in
 *                          its own copy
 *   <root>/logs            per-slot task logs (slot-<n>.log, emptied for each attempt), install log
 *   <root>/bin/gq-agent    wrapper so that tasks can call `gq-agent tag`
 *   <root>/secret          the licence, mode 0600
 *   <root>/running         "<pgid> <token>" of the command slot 0 runs now (see RunSpec.runFile);
 *   <root>/running.<n>     the same for slot n (n ≥ 1)
 */
import { chmodSync, constants, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tar from 'tar';
import type { ArtifactStore } from '@gq/common';

/** File in the workspace root naming the running command's process group (RunSpec.runFile). */
export const RUN_FILE = 'running';

/** The run file of one slot: `running` for slot 0 (as before slots), `running.<n>` for the others. */
export function runFileOf(slot: number): string {
  return slot === 0 ? RUN_FILE : `${RUN_FILE}.${slot}`;
}

export interface Workspace {
  root: string;
  code: string;
  logs: string;
  bin: string;
  secret: string;
}

export function workspaceAt(root: string): Workspace {
  const ws = { root, code: join(root, 'code'), logs: join(root, 'logs'), bin: join(root, 'bin'), secret: join(root, 'secret') };
  for (const d of [ws.root, ws.logs, ws.bin, join(root, 'tasks')]) mkdirSync(d, { recursive: true });
  return ws;
}

/** Download and unpack the job's code bundle into ws.code (once per worker). */
export async function unpackCode(ws: Workspace, artifacts: ArtifactStore, codeKey: string): Promise<void> {
  const file = join(ws.root, 'bundle.tar.gz');
  await artifacts.getFile(codeKey, file);
  rmSync(ws.code, { recursive: true, force: true });
  mkdirSync(ws.code, { recursive: true });
  // tar refuses absolute paths and `..` entries by default (preservePaths: false).
  await tar.x({ file, cwd: ws.code, strict: true });
  rmSync(file, { force: true });
}

/** Write the `gq-agent` wrapper that tasks call for `gq-agent tag`. */
export function writeAgentWrapper(ws: Workspace, agentCommand: readonly string[]): void {
  const quoted = agentCommand.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const file = join(ws.bin, 'gq-agent');
  writeFileSync(file, `#!/bin/sh\nexec ${quoted} "$@"\n`);
  chmodSync(file, 0o755);
}

/**
 * A fresh copy of the code folder for one attempt. Each file is a real copy, never a hard link:
 * a task that writes into a hard-linked file would change the shared original, and every later
 * attempt would run on its change. `COPYFILE_FICLONE` makes it a reflink where the file system
 * can (btrfs, XFS: copy on write, no data copied, the original unreachable from the copy) and a
 * plain copy elsewhere. An empty code folder (a job without `--code` files) is just an empty
 * folder (emptyDir).
 */
export function freshTaskDir(ws: Workspace, task: number, attempt: number): string {
  const dir = join(ws.root, 'tasks', `${task}-${attempt}`);
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  if (existsSync(ws.code) && readdirSync(ws.code).length > 0) {
    cpSync(ws.code, dir, { recursive: true, verbatimSymlinks: true, mode: constants.COPYFILE_FICLONE });
  } else emptyDir(dir);
  return dir;
}

/**
 * Empty folders that attempts left behind, kept (renamed, under the same workspace) to be the
 * next attempt's empty folder instead of a rmdir and a mkdir: on ext4 with `discard`, freeing a
 * folder's block costs a millisecond or more, as much as the fork of a short task. A folder is
 * kept only when it is as mkdir made it: a directory (not a link), empty, owned by this process's
 * user, with the mode it was created with; anything else is removed as before.
 */
interface Spare {
  path: string;
  /** The mode asked of mkdir (undefined: the default). */
  asked: number | undefined;
}
const MAX_SPARES = 64;
const spares: Spare[] = [];
/** Folders emptyDir made, with the mode they had then. */
const made = new Map<string, { asked: number | undefined; mode: number }>();
let spareSeq = 0;

/** The workspace root of a folder of it (<root>/tasks/<t>-<a>, <root>/checkpoints/<t>). */
const rootOf = (dir: string) => dirname(dirname(dir));

/** Make `dir` (which must not exist) an empty folder: a kept one renamed into place, or a new one. */
export function emptyDir(dir: string, mode?: number): string {
  const i = spares.findIndex((sp) => sp.asked === mode && rootOf(sp.path) === rootOf(dir));
  if (i >= 0) {
    const [sp] = spares.splice(i, 1);
    try {
      renameSync(sp!.path, dir);
      made.set(dir, made.get(sp!.path)!);
      made.delete(sp!.path);
      return dir;
    } catch {
      made.delete(sp!.path); // gone meanwhile: make a new one
    }
  }
  mkdirSync(dir, { recursive: true, ...(mode === undefined ? {} : { mode }) });
  made.set(dir, { asked: mode, mode: lstatSync(dir).mode });
  return dir;
}

/** Remove a task's folder (or its checkpoint folder): kept for the next attempt when left as made (see Spare). */
export function removeTaskDir(dir: string): void {
  const m = made.get(dir);
  made.delete(dir);
  try {
    if (m && spares.length < MAX_SPARES) {
      const st = lstatSync(dir);
      if (st.isDirectory() && st.mode === m.mode && st.uid === process.getuid?.() && readdirSync(dir).length === 0) {
        const path = join(dirname(dir), `.spare-${process.pid}-${spareSeq++}`);
        renameSync(dir, path);
        made.set(path, m);
        spares.push({ path, asked: m.asked });
        return;
      }
    }
  } catch {
    /* not there, or not ours to keep: removed below */
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Where slot `slot` keeps the empty log its last attempt left, for its next attempt. */
const spareLog = (ws: Workspace, slot: number): string => join(ws.logs, `slot-${slot}.log`);

/**
 * Make `file` (the attempt's own log, named by task and attempt so `gq logs --follow` finds it) an
 * empty log. The empty one the slot's last attempt left is renamed into place (an unlink and a
 * create cost as much as the fork of a short task on some file systems); anything in the way (an
 * attempt that ended before its log was handled) goes.
 */
export function freshLogFile(ws: Workspace, slot: number, file: string): string {
  const spare = spareLog(ws, slot);
  try {
    const st = lstatSync(spare);
    if (st.isFile() && st.size === 0) {
      renameSync(spare, file);
      return file;
    }
    rmSync(spare, { recursive: true, force: true });
  } catch {
    /* none yet */
  }
  rmSync(file, { recursive: true, force: true });
  return file;
}

/** Keep an attempt's log that stayed empty as the slot's spare (freshLogFile); a non-empty one goes. */
export function putLogAside(ws: Workspace, slot: number, file: string): void {
  try {
    if (lstatSync(file).size === 0) return renameSync(file, spareLog(ws, slot));
  } catch {
    return;
  }
  rmSync(file, { force: true });
}
