/**
 * The renaming rule of the merge: the column names a results file's values go to, so that every
 * value is kept and no two columns of the merged file share a name.
 *
 * 1. A column whose header name is empty, and a value past the end of the header (a ragged row
 *    with more fields), is named `column_<n>` (n = its 1-based position in the file).
 * 2. A column keeps its name unless gq writes a column of that name itself (`task`, and with
 *    --with-provenance the `gq_*` columns) or an earlier column of the same header has it.
 * 3. Otherwise it becomes `<name>_result` (a name gq writes) or `<name>` (a repeat), and if that is
 *    in the header too or already given, `<that>_2`, `<that>_3`, ... the first that is free.
 *
 * So `task,task_result` gives `task_result_2,task_result`; `x,y,x` gives `x,y,x_2`.
 *
 * Columns: the merged file's columns as the files are read (the fixed ones, then each new name
 * in the order first seen), and each distinct header's names worked out once.
 */

/** The merged column names of a file whose header is `header` and whose widest row has `width` fields. */
export function resultColumns(header: readonly string[], width: number, reserved: ReadonlySet<string>): string[] {
  const n = Math.max(header.length, width);
  const names = Array.from({ length: n }, (_, i) => (i < header.length && header[i] !== '' ? header[i]! : `column_${i + 1}`));
  const inHeader = new Set(names);
  const given = new Set<string>();
  const out = new Array<string>(n);
  const pending: number[] = [];
  names.forEach((name, i) => {
    if (!reserved.has(name) && !given.has(name)) {
      given.add(name);
      out[i] = name;
    } else pending.push(i);
  });
  for (const i of pending) {
    const base = reserved.has(names[i]!) ? `${names[i]}_result` : names[i]!;
    const free = (c: string) => !given.has(c) && !reserved.has(c) && !inHeader.has(c);
    let name = base;
    for (let k = 2; !free(name); k++) name = `${base}_${k}`;
    given.add(name);
    out[i] = name;
  }
  return out;
}

/** The merged columns of each distinct header (files mostly share one: its names kept once, not once per file). */
export class Columns {
  readonly fixed: readonly string[];
  /** The result columns after the fixed ones, in the order first seen. */
  readonly added: string[] = [];
  readonly position: Map<string, number>;
  private readonly reserved: ReadonlySet<string>;
  private readonly named = new Map<string, string[]>();

  constructor(fixed: readonly string[]) {
    this.fixed = fixed;
    this.reserved = new Set(fixed);
    this.position = new Map(fixed.map((c, i) => [c, i]));
  }

  /** The names of a file's columns; `grow`: new names become merged columns (first read). */
  namesOf(header: readonly string[], width: number, grow: boolean): string[] {
    const id = `${width}:${JSON.stringify(header)}`;
    let names = this.named.get(id);
    if (!names) this.named.set(id, (names = resultColumns(header, width, this.reserved)));
    if (grow) {
      for (const h of names) {
        if (!this.position.has(h)) {
          this.position.set(h, this.fixed.length + this.added.length);
          this.added.push(h);
        }
      }
    }
    return names;
  }

  get all(): string[] {
    return [...this.fixed, ...this.added];
  }
}
