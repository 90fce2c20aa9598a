// Starting moto for the tests (test/support/moto.ts) and the benchmarks (bench/moto.mjs): one
// implementation, in plain JavaScript so that both can import it. moto runs behind the fidelity
// wrapper in moto_faithful.py (documented in moto.ts) when a Python that imports moto is found,
// else as plain `moto_server`. Every moto is fronted by the strict AWS layer (packages/strict-aws):
// the endpoint handed out is the layer's, which refuses what AWS documents as invalid.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { contentionFromEnv, startStrictLayer } from '@gq/strict-aws';

export const REGION = 'us-east-1';

/** Dummy credentials and us-east-1 for the SDK; nothing of the developer's AWS config. */
export function setSdkEnv() {
  Object.assign(process.env, {
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_SESSION_TOKEN: 'testing',
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  });
  delete process.env.AWS_PROFILE;
}

/** Refuse an endpoint override that is real AWS: tests and benchmarks only run against moto. */
export function refuseRealAws(endpoint, who) {
  if (endpoint && /amazonaws\.com|api\.aws/i.test(endpoint)) {
    throw new Error(`AWS_ENDPOINT_URL=${endpoint} is real AWS; ${who} only run against moto`);
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

export function onPath(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export async function answers(endpoint) {
  try {
    const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/** The Python that runs moto_server (pyenv shims and venvs included), if it can import moto. */
export function motoPython() {
  const candidates = [];
  const which = spawnSync('sh', ['-c', 'command -v moto_server'], { encoding: 'utf8' }).stdout.trim();
  const shebang = (f) => {
    try {
      const first = readFileSync(f, 'utf8').split('\n', 1)[0] ?? '';
      return first.startsWith('#!') ? first.slice(2).trim().split(/\s+/)[0] : undefined;
    } catch {
      return undefined;
    }
  };
  if (which) {
    const real = spawnSync('pyenv', ['which', 'moto_server'], { encoding: 'utf8' });
    for (const f of [real.status === 0 ? real.stdout.trim() : '', which]) {
      const py = f && shebang(f);
      if (py && /python/.test(py)) candidates.push(py);
    }
  }
  candidates.push('python3');
  return candidates.find((py) => spawnSync(py, ['-c', 'import moto.server, werkzeug.serving'], { stdio: 'ignore' }).status === 0);
}

/**
 * The strict AWS layer in front of an AWS-compatible endpoint (moto here, or one in a container):
 * { endpoint, rejections, stop() }. Each rejection is also appended to $GQ_STRICT_LOG when set.
 * GQ_STRICT=0 leaves it out ({ endpoint: upstream }), only to measure what it costs.
 */
export async function frontWithStrictLayer(upstreamEndpoint) {
  if (process.env.GQ_STRICT === '0') return { endpoint: upstreamEndpoint, rejections: [], stop: async () => {} };
  // GQ_CONTENTION_WINDOW_MS / GQ_ITEM_WRITES_PER_S turn on DynamoDB contention (strict-aws contention.ts).
  return startStrictLayer({ upstream: upstreamEndpoint, log: process.env.GQ_STRICT_LOG, contention: contentionFromEnv() });
}

const WRAPPER = readFileSync(join(import.meta.dirname, 'moto_faithful.py'), 'utf8');

/**
 * Start moto on a free port behind the strict layer: { endpoint (the layer's), motoEndpoint,
 * faithful, rejections, stop() }, or undefined if it did not answer
 * within 30 s (e.g. the port was taken meanwhile: try again). A shell in between reads our stdin
 * and kills moto when it closes, so moto dies with this process however this process dies.
 */
export async function launchMoto() {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const py = motoPython();
  const server = py ? '"$3" -c "$4" 127.0.0.1 "$1"' : 'moto_server -H 127.0.0.1 -p "$1"';
  const script =
    `${server} >>"$2" 2>&1 & m=$!; ` +
    "trap 'kill $m 2>/dev/null; exit 0' TERM INT HUP; " +
    'while read -r _; do :; done; kill $m 2>/dev/null; wait $m 2>/dev/null; exit 0';
  const child = spawn('sh', ['-c', script, 'moto-wrapper', String(port), process.env.GQ_MOTO_LOG ?? '/dev/null', py ?? '', WRAPPER], {
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  let exited = false;
  child.on('exit', () => (exited = true));
  const kill = () => {
    if (!exited) {
      child.stdin.destroy();
      child.kill('SIGTERM');
    }
  };
  process.once('exit', kill);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !exited) {
    if (await answers(endpoint)) {
      const layer = await frontWithStrictLayer(endpoint);
      return {
        endpoint: layer.endpoint,
        motoEndpoint: endpoint,
        faithful: Boolean(py),
        rejections: layer.rejections,
        async stop() {
          await layer.stop();
          process.off('exit', kill);
          if (exited) return;
          const gone = new Promise((r) => child.once('exit', r));
          child.stdin.end();
          await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
          kill();
        },
      };
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  kill();
  process.off('exit', kill);
  return undefined;
}
