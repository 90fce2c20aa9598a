/**
 * A local stand-in for https://nodejs.org/dist, for `gq setup` in tests (GQ_NODE_MIRROR): it serves
 * <version>/SHASUMS256.txt and node-<version>-linux-{x64,arm64}.tar.gz in nodejs.org's layout.
 * The "Node.js build" in each tarball is a wrapper around the node running the tests: `node
 * --version` answers the pinned version (the UserData checks the major version), anything else
 * runs this node. `tamper` serves a tarball whose bytes do not match SHASUMS256.txt.
 * Plain JavaScript: shared with the benchmarks (bench/submit.mjs).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * @typedef {object} NodeMirror
 * @property {string} url e.g. http://127.0.0.1:41234/dist
 * @property {Record<string, string>} sha256 sha256 of each tarball by nodejs.org architecture name
 * @property {readonly string[]} requests request paths served, in order
 * @property {() => Promise<void>} close
 */

/**
 * @param {string} version
 * @param {{ tamper?: boolean }} [opts]
 * @returns {Promise<NodeMirror>}
 */
export async function startNodeMirror(version, opts = {}) {
  const dir = mkdtempSync(join(process.env.GQ_TEST_ROOT ?? tmpdir(), 'node-mirror-'));
  const files = new Map();
  /** @type {Record<string, string>} */
  const sha256 = {};
  const lines = [];
  for (const arch of ['x64', 'arm64']) {
    const dist = `node-${version}-linux-${arch}`;
    mkdirSync(join(dir, dist, 'bin'), { recursive: true });
    const node = join(dir, dist, 'bin', 'node');
    writeFileSync(node, `#!/bin/sh\n[ "$1" = --version ] && [ $# -eq 1 ] && { echo ${version}; exit 0; }\nexec '${process.execPath}' "$@"\n`);
    chmodSync(node, 0o755);
    const tar = spawnSync('tar', ['-czf', `${dist}.tar.gz`, dist], { cwd: dir });
    if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
    const data = readFileSync(join(dir, `${dist}.tar.gz`));
    sha256[arch] = createHash('sha256').update(data).digest('hex');
    lines.push(`${sha256[arch]}  ${dist}.tar.gz`, `${'0'.repeat(64)}  ${dist}.tar.xz`);
    files.set(`/dist/${version}/${dist}.tar.gz`, opts.tamper ? Buffer.concat([data, Buffer.from('x')]) : data);
  }
  files.set(`/dist/${version}/SHASUMS256.txt`, Buffer.from(`${'1'.repeat(64)}  node-${version}-darwin-arm64.tar.gz\n${lines.join('\n')}\n`));
  /** @type {string[]} */
  const requests = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const body = files.get(req.url ?? '');
    if (!body) return res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', () => r()));
  server.unref();
  return {
    url: `http://127.0.0.1:${server.address().port}/dist`,
    sha256,
    requests,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
