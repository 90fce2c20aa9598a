/**
 * stdout and stderr of the CLI on a pipe. Node writes to a pipe asynchronously: what the reader
 * has not taken yet waits in the stream's buffer, and `process.exit` drops it (`gq status --tasks
 * | jq` got a JSON document cut short when the reader was slower than gq). So:
 * - `exitWhenWritten` exits only once everything written is out;
 * - `drained` waits while the buffer is over its mark, so that a long listing printed page by
 *   page never holds more than a page or so in memory, however slow the reader;
 * - a reader that went away (`gq status --tasks | head`, EPIPE) is not an error: further output
 *   is dropped and the command finishes what it does (a submit is never left half-written).
 */
const gone = new WeakSet<NodeJS.WriteStream>();

/** Once, at start: a closed stdout or stderr is noted, never thrown. */
export function watchStdio(): void {
  for (const s of [process.stdout, process.stderr]) s.on('error', () => gone.add(s));
}

/** Resolves when `s` can take more (at once unless its buffer is over its high-water mark). */
export function drained(s: NodeJS.WriteStream = process.stdout): Promise<void> {
  if (gone.has(s) || s.destroyed || !s.writableNeedDrain) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      s.off('drain', done);
      s.off('close', done);
      s.off('error', done);
      resolve();
    };
    s.on('drain', done);
    s.on('close', done);
    s.on('error', done);
  });
}

/** Resolves when everything written to `s` so far has been handed to the system. */
function written(s: NodeJS.WriteStream): Promise<void> {
  if (gone.has(s) || s.destroyed || s.writableLength === 0) return Promise.resolve();
  // Writes complete in order: the callback of an empty one comes after every earlier one.
  return new Promise((resolve) => s.write('', () => resolve()));
}

/** process.exit(code) once stdout and stderr are written out. */
export function exitWhenWritten(code: number): void {
  void Promise.all([written(process.stdout), written(process.stderr)]).then(() => process.exit(code));
}
