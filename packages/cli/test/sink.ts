/** A Writable that keeps what is written to it, for tests of code that writes a stream (the merge, tasks.csv). */
import { Writable } from 'node:stream';

export function sink(): { w: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  return {
    w: new Writable({
      write(c: Buffer, _e, cb) {
        chunks.push(Buffer.from(c));
        cb();
      },
    }),
    text: () => Buffer.concat(chunks).toString('utf8'),
  };
}
