/**
 * gq report in a real browser: a small local job through the real CLI and workers (a retry that
 * succeeds, a task that fails twice), its report written by `gq submit --report` and by
 * `gq report`, opened in headless Chromium (playwright-core): one timeline bar per attempt of the
 * tasks' history, each with its outcome's colour, no console or page error, opened well under 2 s;
 * and the report of a synthetic job of 100,000 tasks (density lanes) opened under 2 s. The screenshot is kept in test-artifacts/report-browser.png (gitignored). Without Chromium the
 * file is skipped with a SKIPPED line (test/support/chromium.ts); CI fails instead.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { expectNoProcessesLeft, gq, gqEnv, ROOT, statusJson, testHome } from './support/cli.js';
import { chromiumPath, describeBrowser } from './support/chromium.js';
import { OUTCOME_COLOURS } from '../packages/cli/src/report/model.js';
import { ReportBuilder } from '../packages/cli/src/report/aggregate.js';
import { reportHtml } from '../packages/cli/src/report/html.js';
import { bigJob } from '../packages/cli/test/report-fixture.js';

/** Where the screenshot goes (gitignored): a CI job can keep the folder as an artifact. */
const ARTIFACTS = join(ROOT, 'test-artifacts');

const homes: string[] = [];
afterEach(() => expectNoProcessesLeft(homes, expect));

/** `rgb(r, g, b)` of a `#rrggbb` colour, as getComputedStyle gives it. */
const rgb = (hex: string) => `rgb(${[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(', ')})`;

describeBrowser('gq report in headless Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: chromiumPath()!, headless: true });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('the timeline holds one bar per attempt in its outcome colour, and the page raises no error', async () => {
    const home = testHome('report-browser');
    homes.push(home);
    const env = gqEnv(home);
    const code = join(home, 'code');
    mkdirSync(code);
    // Task 2 fails once (exit 3) and succeeds on its retry; task 3 fails both attempts.
    const flag = join(home, 'flag-2');
    writeFileSync(
      join(home, 'jobs.csv'),
      [
        'instance_type,command',
        'local,echo a=1 > results.csv',
        `local,"if [ -f ${flag} ]; then echo a=2 > results.csv; else touch ${flag}; echo first try >&2; exit 3; fi"`,
        'local,"for i in $(seq 1 30); do echo line $i; done; echo no luck >&2; exit 7"',
        'local,echo a=4 > results.csv',
      ].join('\n') + '\n',
    );
    const file = join(home, 'out', 'report.html');
    const sub = await gq(['submit', join(home, 'jobs.csv'), '--code', code, '--name', 'rep-browser', '--retries', '1', '--workers', '2', '--report', file], env, {
      timeoutMs: 60_000,
    });
    expect(sub.code, sub.stderr).toBe(1); // task 3 failed
    expect(sub.stderr).toContain(`Report: ${file}`);

    // The history behind the bars, as gq status --tasks --json shows it.
    const s = await statusJson('rep-browser', env, true);
    const expected = new Map<string, string>();
    for (const t of s.tasks) {
      t.history.forEach((h: { outcome: string; lifecycle: string; instanceType: string }, i: number) => {
        expect(h).toMatchObject({ lifecycle: 'local', instanceType: 'local' });
        expected.set(`${t.task}/${i + 1}`, h.outcome);
      });
    }
    expect([...expected.entries()].sort()).toEqual([
      ['1/1', 'succeeded'],
      ['2/1', 'failed'],
      ['2/2', 'succeeded'],
      ['3/1', 'failed'],
      ['3/2', 'failed'],
      ['4/1', 'succeeded'],
    ]);

    // gq report writes the same report again (the job is over: nothing changes).
    const again = join(home, 'again.html');
    const rep = await gq(['report', 'rep-browser', '--out', again, '--json'], env);
    expect(rep.code, rep.stderr).toBe(0);
    expect(JSON.parse(rep.stdout)).toMatchObject({ file: again, tasks: 4, attempts: 6 });
    expect(statSync(again).size).toBeLessThan(100_000);
    expect(readFileSync(file, 'utf8')).not.toMatch(/<script|<link|src=/); // self-contained

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (r) => {
      if (!r.url().startsWith('file:')) problems.push(`fetched ${r.url()}`);
    });
    const t0 = Date.now();
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    const openMs = Date.now() - t0;
    const bars = await page.$$eval('#timeline rect[data-outcome][data-task]', (rs) =>
      rs.map((r) => ({ key: `${r.getAttribute('data-task')}/${r.getAttribute('data-attempt')}`, outcome: r.getAttribute('data-outcome')!, fill: getComputedStyle(r).fill, width: r.getBoundingClientRect().width })),
    );
    expect(bars.map((b) => [b.key, b.outcome]).sort()).toEqual([...expected.entries()].sort());
    for (const b of bars) {
      expect(b.fill, `bar ${b.key}`).toBe(rgb(OUTCOME_COLOURS[b.outcome as keyof typeof OUTCOME_COLOURS]));
      expect(b.width).toBeGreaterThan(0);
    }
    // The failure is listed with the tail of its log (the last 20 of its 30 lines, and its stderr).
    const failure = await page.textContent('details.failure[data-task="3"]');
    expect(failure).toContain('exited with code 7');
    expect(failure).toContain('line 30');
    expect(failure).not.toContain('line 10\n');
    expect(await page.locator('#types').textContent()).toContain('local');
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'report-browser.png'), fullPage: true });
    await page.close();
    expect(problems).toEqual([]);
    expect(openMs).toBeLessThan(2000);
  }, 90_000);

  it('the report of 100,000 tasks opens in under 2 s, without error', async () => {
    const { job, pages, now } = bigJob(100_000, 40);
    const b = new ReportBuilder(job, now);
    for (const p of pages) b.add(p);
    const home = testHome('report-big');
    const file = join(home, 'big.html');
    writeFileSync(file, reportHtml(b.finish()));
    expect(statSync(file).size).toBeLessThan(2_000_000);
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    const t0 = Date.now();
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    // The first frame drawn, not only the file parsed.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(undefined))));
    const ms = Date.now() - t0;
    expect(await page.getAttribute('#timeline', 'data-mode')).toBe('density');
    expect(await page.locator('#timeline rect[data-outcome="failed"]').count()).toBeGreaterThan(0);
    await page.close();
    expect(problems).toEqual([]);
    expect(ms).toBeLessThan(2000);
  }, 60_000);
});
