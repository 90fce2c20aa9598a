/**
 * moto in a Docker container, for machines with a Docker engine and no `moto_server` on PATH
 * (a fresh laptop: `npm ci && npm test` runs every AWS test). Started per test file, like the
 * moto_server path, through testcontainers (11.x: 12 does not load on Node 20), running the same
 * fidelity wrapper (moto_faithful.py) inside the container and the same strict AWS layer in
 * front of it on this machine, so a test cannot tell the two paths apart.
 *
 * The image is pinned to the moto version the wrapper's patches were checked against; set
 * GQ_MOTO_IMAGE to try another. testcontainers' reaper (Ryuk) removes the container when this
 * process dies without stopping it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GenericContainer, Wait } from 'testcontainers';
import type { Moto } from './moto.js';
import { frontWithStrictLayer } from './moto-server.mjs';

export const MOTO_IMAGE = process.env.GQ_MOTO_IMAGE ?? 'motoserver/moto:5.2.1';
const PORT = 5000;

export async function startMotoContainer(): Promise<Moto> {
  const wrapper = readFileSync(join(import.meta.dirname, 'moto_faithful.py'), 'utf8');
  const container = await new GenericContainer(MOTO_IMAGE)
    .withEntrypoint(['python3'])
    .withCommand(['-c', wrapper, '0.0.0.0', String(PORT)])
    .withExposedPorts(PORT)
    .withWaitStrategy(Wait.forHttp('/moto-api/', PORT).forStatusCode(200))
    .withStartupTimeout(120_000)
    .start();
  const upstream = `http://${container.getHost()}:${container.getMappedPort(PORT)}`;
  const front = await frontWithStrictLayer(upstream);
  return {
    endpoint: front.endpoint,
    owned: true,
    async stop() {
      await front.stop();
      await container.stop({ timeout: 5_000 });
    },
  };
}
