/**
 * The agent's folders on its machine:
 *   <root>/code            the unpacked code bundle (never run in)
 *   <root>/tasks/<t>-<a>   a fresh copy of code for task t, attempt a (removed afterwards): each
 *                          slot's task runs in its own copy
 *   <root>/logs            per-attempt logs, install log, agent log
 *   <root>/bin/gq-agent    wrapper so that tasks can call `gq-agent tag`
 *   <root>/secret          the licence, mode 0600
 *   <root>/running         "<pgid> <token>" of the command slot 0 runs now (see RunSpec.runFile);
 *   <root>/running.<n>     the same for slot n (n ≥ 1)
 */
import { chmodSync, cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

/** A fresh copy of the code folder for one attempt. */
export function freshTaskDir(ws: Workspace, task: number, attempt: number): string {
  const dir = join(ws.root, 'tasks', `${task}-${attempt}`);
  rmSync(dir, { recursive: true, force: true });
  if (existsSync(ws.code)) cpSync(ws.code, dir, { recursive: true, verbatimSymlinks: true });
  else mkdirSync(dir, { recursive: true });
  return dir;
}

export function removeTaskDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
