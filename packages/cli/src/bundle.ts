/**
 * The code bundle: the code folder (plus --input folders at their places) as a gzipped tar whose
 * bytes depend only on the files' paths, modes and contents, so the same folder always gives the
 * same sha256 and is uploaded once.
 */
import { createHash } from 'node:crypto';
import { cpSync, createReadStream, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative, sep } from 'node:path';
import * as tar from 'tar';
import type { InputMapping } from '@gq/common';
import { progressBar } from './progress.js';

/** Never bundled: version control and gq's own result downloads. */
const EXCLUDE = new Set(['.git', '.hg', '.svn', 'node_modules/.cache']);

export interface Bundle {
  file: string;
  sha256: string;
  bytes: number;
  files: number;
  cleanup(): void;
}

function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const abs = join(dir, name);
      const rel = relative(root, abs).split(sep).join('/');
      if (EXCLUDE.has(rel) || EXCLUDE.has(name)) continue;
      const st = lstatSync(abs);
      if (st.isDirectory()) walk(abs);
      else if (st.isFile() || st.isSymbolicLink()) out.push(rel);
    }
  };
  walk(root);
  return out;
}

async function sha256Of(file: string): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file)) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), bytes };
}

export async function makeBundle(codeDir: string, inputs: readonly InputMapping[] = []): Promise<Bundle> {
  const tmp = mkdtempSync(join(tmpdir(), 'gq-bundle-'));
  const file = join(tmp, 'code.tar.gz');
  let root = codeDir;
  if (inputs.length) {
    // Lay the inputs out as the worker will see them, then archive once.
    root = join(tmp, 'stage');
    cpSync(codeDir, root, { recursive: true, verbatimSymlinks: true, filter: (src) => !EXCLUDE.has(basename(src)) });
    for (const i of inputs) cpSync(i.local, join(root, i.remote), { recursive: true, verbatimSymlinks: true });
  }
  const files = listFiles(root);
  const bar = progressBar('Bundling code', files.length);
  // Sorted entries, no owners, fixed times: the same folder always gives the same bytes.
  const filter = () => (bar.increment(), true);
  await tar.c({ gzip: { level: 6 }, portable: true, mtime: new Date(0), cwd: root, file, filter }, files.length ? files : ['.']).finally(() => bar.stop());
  if (root !== codeDir) rmSync(root, { recursive: true, force: true });
  const { sha256, bytes } = await sha256Of(file);
  return { file, sha256, bytes, files: files.length, cleanup: () => rmSync(tmp, { recursive: true, force: true }) };
}
