/**
 * One line per test file whose AWS tests were skipped for want of moto (suites registered by
 * `describeAws` carry NO_MOTO_MARK in their name), or whose browser tests were for want of
 * Chromium (`describeBrowser`, NO_CHROMIUM_MARK), printed at the end of the run where nobody
 * can miss it. Test files without moto never run their hooks, so this cannot be done from them.
 */
import type { Reporter, TestModule } from 'vitest/node';
import { HOW_TO_GET_MOTO, NO_MOTO_MARK } from './moto-source.js';
import { HOW_TO_GET_CHROMIUM, NO_CHROMIUM_MARK } from './chromium-source.js';

/** The skips reported: the mark in a skipped suite's name, what was skipped, and how to get it. */
const KINDS = [
  { mark: NO_MOTO_MARK, what: 'AWS test', why: 'no moto', how: HOW_TO_GET_MOTO },
  { mark: NO_CHROMIUM_MARK, what: 'browser test', why: 'no Chromium', how: HOW_TO_GET_CHROMIUM },
] as const;

export default class SkipReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const out: string[] = [];
    for (const k of KINDS) {
      const lines: string[] = [];
      for (const m of modules) {
        let skipped = 0;
        for (const t of m.children.allTests()) {
          let s = t.parent;
          let marked = false;
          while (s && s.type === 'suite') {
            if (s.name.includes(k.mark)) marked = true;
            s = s.parent;
          }
          if (marked && t.result().state === 'skipped') skipped++;
        }
        if (skipped > 0) lines.push(`SKIPPED ${m.relativeModuleId}: ${skipped} ${k.what}${skipped === 1 ? '' : 's'} (${k.why})`);
      }
      if (lines.length) out.push(`${lines.join('\n')}\nTo run them: ${k.how}.`);
    }
    if (out.length === 0) return;
    process.stderr.write(`\n${out.join('\n')}\n`);
  }
}
