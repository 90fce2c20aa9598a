// bench/moto.mjs: a moto server for the benchmarks, started the way the tests start theirs
// (test/support/moto.ts): behind the same Python "fidelity" wrapper (DynamoDB requests serialised,
// stale SQS receipts refused, moto's per-item table copy in transactions done once), on a free
// port, killed when this process exits however it exits (a shell in between reads our stdin and
// kills moto at EOF).
//
// The wrapper's Python is read from test/support/moto.ts itself (one source of truth: the
// benchmarks may only import compiled JS, and the tests' TypeScript is not compiled). If it
// cannot be found there, plain `moto_server` is started instead, with a warning: its DynamoDB is
// not serialised and its transactions copy the table once per item, so the figures differ.
//
//   const moto = await startMoto();   // { endpoint, stop() }; throws when moto is not installed
//
// Never real AWS: AWS_ENDPOINT_URL pointing at amazonaws.com is refused, and the SDK gets dummy
// credentials and us-east-1 through the environment, with no profile or config file read.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

export const REGION = 'us-east-1';
const ROOT = resolve(import.meta.dirname, '..');

/** Dummy credentials, us-east-1, nothing of the developer's AWS config. */
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

export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (a && typeof a === 'object' ? res(a.port) : rej(new Error('no port'))));
    });
  });
}

const onPath = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/** The wrapper's Python, as test/support/moto.ts has it; undefined when it is not found there. */
function faithfulWrapper() {
  try {
    const src = readFileSync(join(ROOT, 'test', 'support', 'moto.ts'), 'utf8');
    const m = /const FAITHFUL_MOTO = `([\s\S]*?)`;/.exec(src);
    // Only a plain template literal is taken as it is (no ${...}, no escape sequences).
    if (!m || m[1].includes('${') || m[1].includes('\\')) return undefined;
    return m[1];
  } catch {
    return undefined;
  }
}

/** The Python that runs moto_server (pyenv shims and venvs included), if it can import moto. */
function motoPython() {
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

async function answers(endpoint) {
  try {
    const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/** Start moto on a free port; resolves to { endpoint, faithful, stop() }. */
export async function startMoto() {
  const external = process.env.AWS_ENDPOINT_URL;
  if (external && /amazonaws\.com|api\.aws/i.test(external)) {
    throw new Error(`AWS_ENDPOINT_URL=${external} is real AWS; the benchmarks only run against moto`);
  }
  if (!onPath('moto_server')) throw new Error("moto_server is not installed: pip install 'moto[server]'");
  setSdkEnv();
  const wrapper = faithfulWrapper();
  const py = wrapper ? motoPython() : undefined;
  if (!wrapper || !py) console.warn('bench: fidelity wrapper not available; running plain moto_server (figures not comparable)');
  for (let tries = 0; tries < 3; tries++) {
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const server = py ? '"$3" -c "$4" 127.0.0.1 "$1"' : 'moto_server -H 127.0.0.1 -p "$1"';
    const script =
      `${server} >>"$2" 2>&1 & m=$!; ` +
      "trap 'kill $m 2>/dev/null; exit 0' TERM INT HUP; " +
      'while read -r _; do :; done; kill $m 2>/dev/null; wait $m 2>/dev/null; exit 0';
    const child = spawn('sh', ['-c', script, 'moto-wrapper', String(port), process.env.GQ_MOTO_LOG ?? '/dev/null', py ?? '', wrapper ?? ''], {
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
        return {
          endpoint,
          faithful: Boolean(py),
          async stop() {
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
  }
  throw new Error('moto_server did not start (set GQ_MOTO_LOG=/tmp/moto.log to see why)');
}
