/**
 * Physical lines of CSV bytes (ended by LF, CRLF or a lone CR): counting line breaks, finding
 * where a line starts or ends, and walking a piece line by line to number its records.
 */

export const LF = 10;
export const CR = 13;

/** Line breaks (LF, CRLF, lone CR) in text[from, to). */
export function countLineBreaks(text: string, from = 0, to = text.length): number {
  let count = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === LF || (c === CR && text.charCodeAt(i + 1) !== LF)) count++;
  }
  return count;
}

/** Line breaks (LF, CRLF, lone CR) in buf[from, to). */
export function countByteLineBreaks(buf: Uint8Array, from: number, to: number): number {
  let count = 0;
  for (let i = from; i < to; i++) {
    const c = buf[i];
    if (c === LF || (c === CR && buf[i + 1] !== LF)) count++;
  }
  return count;
}

/** The offset just after the first line break (LF, CRLF or lone CR) at or after `from`; buf.length if there is none. */
export function lineEndAfter(buf: Buffer, from: number): number {
  const n = buf.length;
  // Search a window that grows, so that a file without CRs (or without LFs) is not searched to its end for every piece.
  for (let w = 64 * 1024; from < n; w *= 2) {
    const win = buf.subarray(from, Math.min(n, from + w));
    const lf = win.indexOf(LF);
    const cr = win.indexOf(CR);
    if (cr >= 0 && (lf < 0 || cr < lf)) return from + cr + (buf[from + cr + 1] === LF ? 2 : 1);
    if (lf >= 0) return from + lf + 1;
    if (from + win.length === n) break;
  }
  return n;
}

/** The offset where the line holding buf[at] starts (`from` at the least). */
export function lineStartBefore(buf: Buffer, from: number, at: number): number {
  let i = Math.min(at, buf.length) - 1;
  while (i >= from && buf[i] !== LF && buf[i] !== CR) i--;
  return Math.max(i + 1, from);
}

/** Line breaks inside a record's fields (in quoted fields). */
function fieldLineBreaks(fields: readonly string[]): number {
  let breaks = 0;
  for (const f of fields) if (f.includes('\n') || f.includes('\r')) breaks += countLineBreaks(f);
  return breaks;
}

/**
 * Walks the physical lines of a piece (ended by LF, CRLF or a lone CR), to number records: the
 * line ends are found with indexOf, each search moving only forward.
 */
export class LineWalker {
  private nextLf = -1;
  private nextCr = -1;
  /** `pos`: the offset where the current line starts; `line`: its number in the file. */
  constructor(
    private readonly buf: Buffer,
    public pos: number,
    public line: number,
  ) {}

  /** The offset of the current line's line break (buf.length for a last line without one). */
  private breakAt(): number {
    const { buf, pos } = this;
    if (this.nextLf < pos) {
      this.nextLf = buf.indexOf(LF, pos);
      if (this.nextLf < 0) this.nextLf = buf.length;
    }
    if (this.nextCr < pos) {
      this.nextCr = buf.indexOf(CR, pos);
      if (this.nextCr < 0) this.nextCr = buf.length;
    }
    return Math.min(this.nextLf, this.nextCr);
  }

  /** Moves to the next line. */
  next(): void {
    const at = this.breakAt();
    this.pos = at + (this.buf[at] === CR && this.buf[at + 1] === LF ? 2 : 1);
    this.line++;
  }

  /** Moves past empty lines, which csv-parse skips: a record starts on a line that is not empty. */
  skipEmpty(): void {
    while (this.pos < this.buf.length && this.breakAt() === this.pos) this.next();
  }

  /** Moves past a record that starts on the current line. */
  skipRecord(fields: readonly string[]): void {
    for (let n = 1 + fieldLineBreaks(fields); n > 0; n--) this.next();
  }
}
