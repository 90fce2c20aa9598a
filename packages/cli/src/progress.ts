/**
 * Progress bars on stderr for long work (bundling and uploading the code, enqueueing tasks,
 * downloading results), and the one rule for drawing on a terminal at all: only a terminal, and
 * neither NO_COLOR (https://no-color.org) nor TERM=dumb, gets ANSI escapes (bars, redraws);
 * everything else, and any command run with --json, gets plain lines and no bar.
 */
import cliProgress from 'cli-progress';

/** Whether gq may draw on `stream` (bars, cursor moves, screen redraws). */
export function drawsOn(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return !!stream.isTTY && !env.NO_COLOR && env.TERM !== 'dumb';
}

/** False for the command being run when it prints machine-readable output (cli.ts sets it from --json). */
let allowed = true;
export function allowProgress(yes: boolean): void {
  allowed = yes;
}

export interface Progress {
  /** Whether a bar is drawn (else every call does nothing). */
  readonly shown: boolean;
  /** Sets how much is done (of the total given at the start). */
  update(done: number): void;
  /** Adds to what is done. */
  increment(by?: number): void;
  /** Removes the bar (it is not left on the screen); safe to call twice. */
  stop(): void;
}

const NONE: Progress = { shown: false, update: () => undefined, increment: () => undefined, stop: () => undefined };

const mib = (n: number) => (n / 1024 / 1024).toFixed(1);

/** A bar labelled `label` for `total` items (or bytes), or one that draws nothing. */
export function progressBar(label: string, total: number, unit: 'items' | 'bytes' = 'items', stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!allowed || total <= 0 || !drawsOn(stream)) return NONE;
  const bar = new cliProgress.SingleBar(
    {
      format: ` ${label} {bar} {percentage}% | ${unit === 'bytes' ? '{doneMiB}/{totalMiB} MiB' : '{value}/{total}'}`,
      hideCursor: true,
      clearOnComplete: true,
      stream,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  const extra = (done: number) => (unit === 'bytes' ? { doneMiB: mib(done), totalMiB: mib(total) } : {});
  let done = 0;
  let stopped = false;
  bar.start(total, 0, extra(0));
  return {
    shown: true,
    update(n) {
      done = n;
      if (!stopped) bar.update(n, extra(n));
    },
    increment(by = 1) {
      this.update(done + by);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
