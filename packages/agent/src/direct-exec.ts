/**
 * When a task's command needs no shell, run its program directly instead of `bash -c COMMAND`,
 * with exactly what bash would have given it. For a simple command (one program and its
 * arguments, nothing bash would expand) `bash -c` starts, parses, and then execs the program in
 * its own place (same pid, same process group, same descriptors): the only traces it leaves are
 * in the environment, reproduced here (checked against bash itself in direct-exec.test.ts):
 *   - `_` is the program's path (as found in PATH, or as written when it has a slash);
 *   - `SHLVL` is kept (bash adds 1 at start and takes it off for the exec; unset becomes 0);
 *   - `PWD` is kept when it names the working folder, else it is the folder's physical path;
 *   - `OLDPWD` is dropped unless it names a folder.
 * Anything else goes through bash as before: a word with a character bash treats specially
 * (quotes, `$`, globs, `~`, braces, redirections, `;`, `|`, `&`, …), an assignment, a builtin or
 * reserved word first (so `echo`, `printf`, `test` keep bash's own), a program not found in an
 * absolute PATH entry, and an environment that changes how bash starts (BASH_ENV, SHELLOPTS,
 * BASHOPTS, exported functions, POSIXLY_CORRECT, EXECIGNORE, …, or an SHLVL bash would reset).
 * Builtins are never replaced, with two exceptions whose programs do exactly the same: `true` and
 * `false` without arguments (exit 0 and 1, no output).
 * A program that the kernel will not run (no permission, a script without `#!`) is run through
 * bash too, by the caller (fast-spawn.ts), so that bash's own handling of it is kept.
 */
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

/** Characters of a word that bash takes literally in every position. */
const PLAIN_WORD = /^[A-Za-z0-9_./,:+=@%^-]+$/;

/** Bash 5's builtins and reserved words (`compgen -b`, `compgen -k`). */
const SHELL_WORDS = new Set(
  (
    '. : [ alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs disown echo enable eval ' +
    'exec exit export false fc fg getopts hash help history jobs kill let local logout mapfile popd printf pushd pwd read ' +
    'readarray readonly return set shift shopt source suspend test times trap true type typeset ulimit umask unalias unset wait ' +
    'if then else elif fi case esac for select while until do done in function time { } ! [[ ]] coproc'
  ).split(' '),
);

/** Builtins whose program is the same when given no arguments. */
const SAME_AS_PROGRAM = new Set(['true', 'false']);

/** Environment variables that change what bash does before it runs the command. */
const CHANGES_BASH = (name: string) =>
  name.startsWith('BASH') || ['ENV', 'SHELLOPTS', 'POSIXLY_CORRECT', 'EXECIGNORE', 'PROMPT_COMMAND'].includes(name);

/** The words of `command` when it is one plain program and its arguments; else undefined. */
export function plainWords(command: string): string[] | undefined {
  const words = command.split(/[ \t]+/).filter((w) => w !== '');
  if (words.length === 0 || !words.every((w) => PLAIN_WORD.test(w))) return undefined;
  const first = words[0]!;
  if (first.includes('=')) return undefined; // an assignment (FOO=1 prog)
  if (SHELL_WORDS.has(first) && !(SAME_AS_PROGRAM.has(first) && words.length === 1)) return undefined;
  return words;
}

export interface Direct {
  /** The program to exec (absolute, or relative to the working folder when written with a slash). */
  file: string;
  argv: string[];
  env: NodeJS.ProcessEnv;
}

/** stat, undefined for a path that is not there (ENOENT without an exception; ENOTDIR, EACCES, … too). */
const stat = (p: string) => {
  try {
    return statSync(p, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
};

const isExecutableFile = (file: string): boolean => {
  if (!stat(file)?.isFile()) return false;
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/**
 * The program `name` (no slash) names, found as execvp and bash find it: the first executable
 * regular file of that name in `path`, an empty or relative entry taken against `cwd`, the path
 * written as they write it (`dir/name`). `relative`: found through such an entry. Answers for a
 * PATH of absolute entries only are kept, by name and PATH: one check that the file is still there
 * and executable instead of a look through every entry for each task (a program put earlier in
 * PATH while the worker runs is not seen; bash's own hash table does the same within a shell).
 */
const found = new Map<string, string>();
export function lookPath(name: string, path: string, cwd: string): { file: string; relative: boolean } | undefined {
  const key = `${name}\0${path}`;
  const hit = found.get(key);
  if (hit !== undefined && isExecutableFile(hit)) return { file: hit, relative: false };
  found.delete(key);
  const dirs = path.split(':');
  for (const dir of dirs) {
    const relative = !isAbsolute(dir);
    const f = dir === '' ? name : dir.endsWith('/') ? dir + name : `${dir}/${name}`;
    if (!isExecutableFile(relative ? resolve(cwd, f) : f)) continue;
    if (!relative && dirs.every((d) => isAbsolute(d))) found.set(key, f);
    return { file: relative ? resolve(cwd, f) : f, relative };
  }
  return undefined;
}

const sameFile = (a: string, b: string): boolean => {
  const x = stat(a);
  const y = x && stat(b);
  return !!x && !!y && x.dev === y.dev && x.ino === y.ino;
};

const isDir = (p: string): boolean => !!stat(p)?.isDirectory();

/** How to run `command` without bash (see the header), or undefined to run it with bash. */
export function directExec(command: string, env: NodeJS.ProcessEnv, cwd: string): Direct | undefined {
  const argv = plainWords(command);
  if (!argv) return undefined;
  for (const [k, v] of Object.entries(env)) if (v !== undefined && CHANGES_BASH(k)) return undefined;
  const level = env.SHLVL;
  if (level !== undefined && !/^[0-9]{1,3}$/.test(level)) return undefined; // bash would change it
  if (level !== undefined && Number(level) >= 999) return undefined;
  if (env.OLDPWD !== undefined && !isAbsolute(env.OLDPWD)) return undefined;
  const name = argv[0]!;
  let file: string | undefined;
  if (name.includes('/')) file = name;
  else {
    // Not found (bash says so), or found through a relative PATH entry: bash.
    const hit = lookPath(name, env.PATH ?? '', cwd);
    if (!hit || hit.relative) return undefined;
    file = hit.file;
  }
  const out: NodeJS.ProcessEnv = { ...env, _: file, SHLVL: level === undefined ? '0' : String(Number(level)) };
  if (!(env.PWD && isAbsolute(env.PWD) && sameFile(env.PWD, cwd))) {
    try {
      out.PWD = realpathSync.native(cwd);
    } catch {
      return undefined; // no such folder: bash reports it (the spawn fails)
    }
  }
  if (env.OLDPWD !== undefined && !isDir(env.OLDPWD)) delete out.OLDPWD;
  return { file, argv, env: out };
}
