/**
 * Who a task runs as. On EC2 the agent runs as root (a systemd service) and runs every task as the
 * unprivileged user the UserData created (gq-task), with its own HOME, and without the instance
 * role: no AWS credentials in its environment, and the metadata service blocked for that user by
 * an iptables owner match (the UserData's block_imds), unless the job asked for
 * `--task-aws-access`. Locally (no --task-user) tasks run as the user running gq, as before.
 *
 * A task cannot reach the status store itself then, so `gq-agent tag` inside a task writes its tag
 * to a spool folder of the task (GQ_TAG_SPOOL) and the agent records it (drainTagSpool).
 */
import { execFileSync } from 'node:child_process';
import {
  chownSync,
  closeSync,
  constants,
  fstatSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { UserError } from '@gq/common';

export interface TaskUser {
  name: string;
  uid: number;
  gid: number;
}

/** Environment variable naming a task's tag spool folder (see the module comment). */
export const TAG_SPOOL_ENV = 'GQ_TAG_SPOOL';

const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

/** Resolve a user name with `id` (an injectable user database: the test runtime maps it). */
export function resolveTaskUser(name: string, id: (args: string[]) => string = runId): TaskUser {
  if (!USER_NAME.test(name)) throw new UserError(`--task-user "${name}" is not a user name.`);
  let uid: number;
  let gid: number;
  try {
    uid = Number(id(['-u', name]).trim());
    gid = Number(id(['-g', name]).trim());
  } catch {
    throw new UserError(`No user "${name}" on this machine to run tasks as.`, { hint: 'The UserData creates it (useradd).' });
  }
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new UserError(`Could not read the ids of user "${name}".`);
  if (uid === 0) throw new UserError(`--task-user "${name}" is root; tasks must not run as root.`);
  return { name, uid, gid };
}

function runId(args: string[]): string {
  return execFileSync('id', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

/** Variables that hand out AWS credentials (the SDK's chain, the CLI's, containers'). */
const CREDENTIAL_VARS = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_SECURITY_TOKEN',
  'AWS_CREDENTIAL_EXPIRATION',
  'AWS_PROFILE',
  'AWS_DEFAULT_PROFILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_CONFIG_FILE',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_ROLE_ARN',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
];

/**
 * The task's environment as the task user: its own HOME, USER and LOGNAME; without AWS access, no
 * credential variable and the SDK told not to ask the metadata service (which is blocked anyway).
 */
export function taskUserEnv(env: NodeJS.ProcessEnv, user: TaskUser, home: string, awsAccess: boolean): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, HOME: home, USER: user.name, LOGNAME: user.name };
  if (!awsAccess) {
    for (const v of CREDENTIAL_VARS) delete out[v];
    out.AWS_EC2_METADATA_DISABLED = 'true';
  }
  return out;
}

/** A folder that belongs to the task user (mode 0700), created if missing. */
export function ownedDir(dir: string, user: TaskUser): string {
  mkdirSync(dirname(dir), { recursive: true }); // parents as usual (0755): the user passes through
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chownSync(dir, user.uid, user.gid);
  return dir;
}

/** Give a whole tree (the task's copy of the code) to the task user; symbolic links are not followed. */
export function chownTree(path: string, user: TaskUser): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return lchownSync(path, user.uid, user.gid); // the link itself, never its target
  if (st.isDirectory()) for (const name of readdirSync(path)) chownTree(join(path, name), user);
  chownSync(path, user.uid, user.gid);
}

export interface SpooledTag {
  key: string;
  value: string;
}

/** `gq-agent tag` in a task without AWS access: leave the tag for the agent. */
let spooled = 0;
export function spoolTag(dir: string, tag: SpooledTag): void {
  // Sorted by name = by time (and call order within one process); random: no clash between tasks.
  const name = `${Date.now().toString().padStart(15, '0')}-${String(spooled++).padStart(6, '0')}-${randomBytes(4).toString('hex')}`;
  writeFileSync(join(dir, `${name}.tmp`), JSON.stringify(tag));
  renameSync(join(dir, `${name}.tmp`), join(dir, `${name}.json`));
}

/** The tags waiting in a spool folder, oldest first; each is removed as it is read. */
export function drainTagSpool(dir: string): SpooledTag[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch {
    return [];
  }
  const out: SpooledTag[] = [];
  for (const n of names) {
    const file = join(dir, n);
    let fd: number | undefined;
    try {
      // Written by the task: opened without following a link (the agent reads it as root), small,
      // and parsed as untrusted input.
      fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      const st = fstatSync(fd);
      if (st.isFile() && st.size <= 4096) {
        const v = JSON.parse(readFileSync(fd, 'utf8')) as Partial<SpooledTag>;
        if (typeof v.key === 'string' && typeof v.value === 'string') out.push({ key: v.key, value: v.value });
      }
    } catch {
      /* not a tag: dropped */
    }
    if (fd !== undefined) closeSync(fd);
    rmSync(file, { force: true });
  }
  return out;
}
