/**
 * Suite-wide set-up, once per `vitest run`:
 * - a private GQ_HOME root for every test run (GQ_TEST_ROOT);
 * - where moto comes from (GQ_MOTO_SOURCE, read by test/support/moto.ts): AWS_ENDPOINT_URL, else
 *   `moto_server` on PATH, else a Docker engine that answers (moto in a container per file),
 *   else none. Without moto the AWS tests are skipped and test/support/skip-reporter.ts prints
 *   one line per skipped file; with GQ_REQUIRE_AWS_TESTS=1 (set by .ci/run) the run fails here
 *   instead, so CI can never pass with the AWS tests skipped.
 * Moto itself is started by the tests that need it, once per test file.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onPath } from './moto-server.mjs';
import { HOW_TO_GET_MOTO, type MotoSource } from './moto-source.js';

async function dockerAnswers(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

async function findMoto(): Promise<MotoSource | undefined> {
  if (process.env.AWS_ENDPOINT_URL) return 'endpoint';
  if (onPath('moto_server')) return 'moto_server';
  if (await dockerAnswers()) return 'docker';
  return undefined;
}

export default async function setup(): Promise<() => void> {
  const source = await findMoto();
  if (!source && process.env.GQ_REQUIRE_AWS_TESTS === '1') {
    throw new Error(`GQ_REQUIRE_AWS_TESTS=1 but no moto can be had, so the AWS tests cannot run: ${HOW_TO_GET_MOTO}.`);
  }
  process.env.GQ_MOTO_SOURCE = source ?? '';
  if (source === 'docker') console.warn('moto: no moto_server on PATH; running moto in Docker containers (testcontainers)');
  const root = mkdtempSync(join(tmpdir(), 'gq-test-'));
  // Tasks of the emulated instances run as another user (gq-task): they pass through, no more.
  chmodSync(root, 0o711);
  process.env.GQ_TEST_ROOT = root;
  return () => {
    if (!process.env.GQ_KEEP_TEST_ROOT) rmSync(root, { recursive: true, force: true });
  };
}
