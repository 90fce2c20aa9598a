/** The native addon (src/spawn.c), or null when it is not built. */
declare const addon: {
  /** Start `file` (a path) with `argv` and `env` ("K=V") in `cwd`, in a new session, stdin /dev/null. Returns its pid; throws an Error with `errno`. */
  spawn(file: string, argv: readonly string[], env: readonly string[], cwd: string, stdoutFd: number, stderrFd: number): number;
  /** undefined while `pid` runs; else [exit code or -1, signal number or 0]. */
  reap(pid: number): [number, number] | undefined;
  /** A close-on-exec pipe: [read end, write end]. */
  pipe(): [number, number];
} | null;
export = addon;
