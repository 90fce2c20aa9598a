/**
 * One line per test file whose AWS tests were skipped for want of moto (suites registered by
 * `describeAws` carry NO_MOTO_MARK in their name), printed at the end of the run where nobody
 * can miss it. Test files without moto never run their hooks, so this cannot be done from them.
 */
import type { Reporter, TestModule } from 'vitest/node';
import { HOW_TO_GET_MOTO, NO_MOTO_MARK } from './moto-source.js';

export default class SkipReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const lines: string[] = [];
    for (const m of modules) {
      let skipped = 0;
      for (const t of m.children.allTests()) {
        let s = t.parent;
        let marked = false;
        while (s && s.type === 'suite') {
          if (s.name.includes(NO_MOTO_MARK)) marked = true;
          s = s.parent;
        }
        if (marked && t.result().state === 'skipped') skipped++;
      }
      if (skipped > 0) lines.push(`SKIPPED ${m.relativeModuleId}: ${skipped} AWS test${skipped === 1 ? '' : 's'} (no moto)`);
    }
    if (lines.length === 0) return;
    process.stderr.write(`\n${lines.join('\n')}\nTo run them: ${HOW_TO_GET_MOTO}.\n`);
  }
}
