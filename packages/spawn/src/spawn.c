/*
 * gq_spawn: start a command with posix_spawn instead of Node's fork + exec.
 *
 * Node's child_process forks the whole agent process (tens of MB of page tables copied, then
 * every page the child touches before exec faulted in and torn down again): on a 2-core machine
 * that was most of the cost of a short task. posix_spawn (glibc: clone with CLONE_VM|CLONE_VFORK)
 * shares the parent's memory until the exec, so starting a command costs the same however large
 * the agent is. The child is set up as libuv sets up a `detached` child: a new session (so its
 * own process group), stdin from /dev/null, stdout and stderr on the given descriptors, the given
 * working folder, every signal at its default disposition and none blocked.
 *
 * The child stays a child of the agent (its $PPID is the agent). The agent reaps it with reap()
 * on SIGCHLD (libuv only ever waits for the pids it started itself, so neither takes the other's).
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, "gq_spawn: bad arguments"); goto fail; } } while (0)

static char *str_of(napi_env env, napi_value v) {
  size_t n;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return NULL;
  char *s = malloc(n + 1);
  if (!s) return NULL;
  if (napi_get_value_string_utf8(env, v, s, n + 1, &n) != napi_ok) { free(s); return NULL; }
  return s;
}

static char **strs_of(napi_env env, napi_value arr) {
  uint32_t n;
  if (napi_get_array_length(env, arr, &n) != napi_ok) return NULL;
  char **out = calloc(n + 1, sizeof(char *));
  if (!out) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    if (napi_get_element(env, arr, i, &e) != napi_ok || !(out[i] = str_of(env, e))) {
      for (uint32_t j = 0; j < i; j++) free(out[j]);
      free(out);
      return NULL;
    }
  }
  return out;
}

static void free_strs(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  napi_value msg, code, e;
  char buf[256];
  snprintf(buf, sizeof buf, "%s: %s", what, strerror(err));
  napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &msg);
  napi_create_int32(env, err, &code);
  napi_create_error(env, NULL, msg, &e);
  napi_set_named_property(env, e, "errno", code);
  napi_throw(env, e);
  return NULL;
}

/* spawn(file, argv[], env[], cwd, stdoutFd, stderrFd) -> pid. `file` is a path (no PATH search:
   the caller resolves it with the child's PATH, as libuv does). Throws an Error with `errno` when
   the command cannot be started (a missing file or folder, no permission). */
static napi_value Spawn(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value args[6], result = NULL;
  char *file = NULL, *cwd = NULL, **argv = NULL, **envp = NULL;
  int32_t out_fd, err_fd;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (argc < 6) { napi_throw_error(env, NULL, "gq_spawn: 6 arguments"); return NULL; }
  file = str_of(env, args[0]);
  argv = strs_of(env, args[1]);
  envp = strs_of(env, args[2]);
  cwd = str_of(env, args[3]);
  if (!file || !argv || !envp || !cwd) { napi_throw_error(env, NULL, "gq_spawn: bad arguments"); goto fail; }
  CHECK(napi_get_value_int32(env, args[4], &out_fd));
  CHECK(napi_get_value_int32(env, args[5], &err_fd));

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t all, none;
  sigfillset(&all);
#if defined(__linux__) && defined(__GLIBC__)
  /* glibc's sigfillset leaves out its two internal signals (32, 33), and posix_spawn then makes
     them ignored in the child (and so in the program it execs). Set every bit, as a child of
     libuv has them: at their default. */
  for (size_t i = 0; i < sizeof all / sizeof(unsigned long); i++) ((unsigned long *)&all)[i] = ~0UL;
#endif
  sigemptyset(&none);
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
  posix_spawn_file_actions_addchdir_np(&fa, cwd);
#ifdef POSIX_SPAWN_SETSID
  short flags = POSIX_SPAWN_SETSID;
#else
  short flags = POSIX_SPAWN_SETPGROUP;
  posix_spawnattr_setpgroup(&attr, 0);
#endif
  posix_spawnattr_setflags(&attr, flags | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  pid_t pid;
  int rc = posix_spawn(&pid, file, &fa, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw_errno(env, "spawn", rc);
  else napi_create_int32(env, pid, &result);
fail:
  free(file);
  free(cwd);
  free_strs(argv);
  free_strs(envp);
  return result;
}

/* reap(pid) -> undefined while it runs; else [exitCode or -1, signal number or 0]. */
static napi_value Reap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result = NULL;
  int32_t pid;
  if (napi_get_cb_info(env, info, &argc, &arg, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, arg, &pid) != napi_ok) {
    napi_throw_error(env, NULL, "gq_spawn: reap(pid)");
    return NULL;
  }
  int status;
  pid_t r;
  do r = waitpid(pid, &status, WNOHANG); while (r == -1 && errno == EINTR);
  if (r == 0) { napi_get_undefined(env, &result); return result; }
  if (r == -1) return throw_errno(env, "waitpid", errno);
  napi_value code, sig;
  napi_create_array_with_length(env, 2, &result);
  napi_create_int32(env, WIFEXITED(status) ? WEXITSTATUS(status) : -1, &code);
  napi_create_int32(env, WIFSIGNALED(status) ? WTERMSIG(status) : 0, &sig);
  napi_set_element(env, result, 0, code);
  napi_set_element(env, result, 1, sig);
  return result;
}

/* pipe() -> [readFd, writeFd], both close-on-exec. */
static napi_value Pipe(napi_env env, napi_callback_info info) {
  int fds[2];
#ifdef __linux__
  if (pipe2(fds, O_CLOEXEC) != 0) return throw_errno(env, "pipe", errno);
#else
  if (pipe(fds) != 0) return throw_errno(env, "pipe", errno);
  fcntl(fds[0], F_SETFD, FD_CLOEXEC);
  fcntl(fds[1], F_SETFD, FD_CLOEXEC);
#endif
  napi_value result, r, w;
  napi_create_array_with_length(env, 2, &result);
  napi_create_int32(env, fds[0], &r);
  napi_create_int32(env, fds[1], &w);
  napi_set_element(env, result, 0, r);
  napi_set_element(env, result, 1, w);
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "spawn", NULL, Spawn, NULL, NULL, NULL, napi_default, NULL },
    { "reap", NULL, Reap, NULL, NULL, NULL, napi_default, NULL },
    { "pipe", NULL, Pipe, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, 3, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
