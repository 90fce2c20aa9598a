/** The AWS backend stands on the ports alone: no module of it imports the local backend. */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const AWS_SRC = fileURLToPath(new URL('../../src/aws/', import.meta.url));

describe('aws/ imports', () => {
  it('no module under src/aws imports from src/local (port errors and key rules live beside the ports)', () => {
    const files = readdirSync(AWS_SRC).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(5);
    const offending = files.filter((f) => /from\s+['"]\.\.\/local\//.test(readFileSync(AWS_SRC + f, 'utf8')));
    expect(offending).toEqual([]);
  });
});
