// Where this run's moto comes from, and how skips are marked: no vitest or SDK imports, so that
// global-setup and the skip reporter (main process) can use it too.
import { onPath } from './moto-server.mjs';

/**
 * Where this run's moto comes from, decided once per run by test/support/global-setup.ts
 * (GQ_MOTO_SOURCE): an AWS_ENDPOINT_URL given by the developer, `moto_server` on PATH, or a
 * Docker engine (moto in a container, started per file through testcontainers). Undefined: none.
 */
export type MotoSource = 'endpoint' | 'moto_server' | 'docker';

export function motoSource(): MotoSource | undefined {
  const decided = process.env.GQ_MOTO_SOURCE;
  if (decided !== undefined) return (decided || undefined) as MotoSource | undefined;
  // Outside the vitest run (a script importing this file): no Docker probe, it is asynchronous.
  if (process.env.AWS_ENDPOINT_URL) return 'endpoint';
  return onPath('moto_server') ? 'moto_server' : undefined;
}

/** True when moto can be had; decide describe vs skip at collection time with this. */
export function motoAvailable(): boolean {
  return motoSource() !== undefined;
}

/** The mark in a skipped suite's name that test/support/skip-reporter.ts reports, one line per file. */
export const NO_MOTO_MARK = '[skipped: no moto]';

/** How to get moto, for skip lines and for CI's refusal (global-setup). */
export const HOW_TO_GET_MOTO =
  "install moto (pip install 'moto[server]' puts moto_server on PATH), or start a Docker engine " +
  '(the tests then run moto in a container), or set AWS_ENDPOINT_URL to a running moto';

