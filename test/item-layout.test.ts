/**
 * The status table's item layout has one definition (packages/common/src/aws/status-store/). The
 * scripts outside the packages that touch the table, the benchmarks (bench/*.mjs) and the
 * UserData's boot script, take their keys from it instead of writing them by hand: no key literal
 * in them, and every name they import from gq's packages is there (so that moving the store's
 * code cannot break a benchmark unnoticed: nothing else runs them).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = join(ROOT, 'bench');
const scripts = [
  ...readdirSync(BENCH)
    .filter((f) => f.endsWith('.mjs'))
    .map((f) => join(BENCH, f)),
  join(ROOT, 'packages', 'cli', 'boot', 'worker-boot.sh'),
];

/** Key literals of the layout (pk JOB#<job> / JOBS; sk JOB, JOB#COUNT#n, TASK#n, CMD#n, INST#id, SECRET#name). */
const KEY_LITERAL = /JOB#|TASK#|CMD#|INST#|SECRET#|COUNT#|['"`]JOBS?['"`]/;

describe('the status table layout outside the packages', () => {
  it('no benchmark nor the boot script writes a key by hand', () => {
    for (const file of scripts) {
      const lines = readFileSync(file, 'utf8').split('\n');
      const found = lines.map((l, i) => `${i + 1}: ${l.trim()}`).filter((l) => !/^\d+: (\/\/|#|\*)/.test(l) && KEY_LITERAL.test(l));
      expect(found, file).toEqual([]);
    }
  });

  it("every name a benchmark imports from gq's packages exists", async () => {
    const seen: string[] = [];
    for (const file of scripts.filter((f) => f.endsWith('.mjs'))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'((?:@gq\/[^']+)|(?:\.\.\/packages\/[^']+))'/g)) {
        const spec = m[2]!;
        const mod = (await import(spec.startsWith('.') ? pathToFileURL(resolve(BENCH, spec)).href : spec)) as Record<string, unknown>;
        for (const name of m[1]!.split(',').map((n) => n.trim().split(/\s+as\s+/)[0]!).filter(Boolean)) {
          expect(mod[name], `${file}: ${name} from ${spec}`).toBeDefined();
          seen.push(name);
        }
      }
    }
    // The check above saw the layout's imports (it can fail).
    expect(seen).toEqual(expect.arrayContaining(['jobPk', 'taskSk', 'JOB_SK', 'taskItem', 'commandItem', 'DynamoStatusStore']));
  });
});
