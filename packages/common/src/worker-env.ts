/**
 * The environment a local worker process starts with, and the one its tasks get back.
 *
 * Node loads the certificates named by NODE_EXTRA_CA_CERTS at every start, before any code runs
 * (a machine-wide bundle of ~150 certificates: ~80 ms of CPU per process on a 2-core machine,
 * where `node -e 0` takes ~25 ms without it). A local worker never opens a TLS connection (its
 * backend is a file on this machine), so it starts without the variable; the value travels
 * under HELD_CA_CERTS and the worker puts it back for what it runs (install script and tasks),
 * which see exactly the environment of the gq command that started the worker.
 */
export const HELD_CA_CERTS = 'GQ_HELD_NODE_EXTRA_CA_CERTS';
const CA = 'NODE_EXTRA_CA_CERTS';

/** The environment to start a local worker with (`env` unchanged when the variable is not set). */
export function workerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (env[CA] === undefined) return env;
  const { [CA]: ca, ...rest } = env;
  return { ...rest, [HELD_CA_CERTS]: ca };
}

/** The environment of the worker's tasks: the variable put back as it was. */
export function taskBaseEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { [HELD_CA_CERTS]: held, ...rest } = env;
  return held === undefined ? rest : { ...rest, [CA]: held };
}
