/**
 * The older Python tool's command lines, for its users: `gq submit` in the dispatcher's
 * positional form (jobname jobfile install_script code_folder results_file) and the tool's own
 * script names typed after `gq` are answered with the gq command that does the same; its submit
 * flags are accepted (cli.ts declares them hidden on submit and `submitFromOldFlags` maps them).
 * Pure: no I/O, the caller prints or throws.
 */
import { UserError } from '@gq/common';

/** A word as the shell needs it: left alone when safe, else in single quotes. */
export function shellWord(s: string): string {
  return /^[\w./=:@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The older tool's flags that take no value (dispatcher.py -h, and gq's own boolean flags). */
const NO_VALUE = new Set(['-c', '--create', '-d', '--dispatch', '-v', '--verbose', '-h', '--help', '--wait', '--json', '--spot', '--task-aws-access', '--version']);

/** The dispatcher's options, in gq's spelling (a value-taking one carries its value). */
function translateFlags(flags: string[][]): string[] {
  const out: string[] = [];
  for (const [flag, value] of flags) {
    const name = flag!.split('=')[0]!;
    const v = value ?? (flag!.includes('=') ? flag!.slice(name.length + 1) : undefined);
    if (name === '-c' || name === '--create' || name === '-d' || name === '--dispatch' || name === '--tag_offset') continue;
    if (name === '-v') out.push('--verbose');
    else if (name === '-i' || name === '--extra_input_code_path') out.push('--input', shellWord(v ?? ''));
    else if (name === '-o' || name === '--extra_output_file') out.push('--output', shellWord(v ?? ''));
    else out.push(name, ...(v === undefined ? [] : [shellWord(v)]));
  }
  return out;
}

/** Splits the words after a command into positionals and flags (with the value a flag takes). */
function split(words: readonly string[]): { positionals: string[]; flags: string[][] } {
  const positionals: string[] = [];
  const flags: string[][] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === '--') {
      positionals.push(...words.slice(i + 1));
      break;
    }
    if (!w.startsWith('-') || w === '-') positionals.push(w);
    else if (w.includes('=') || NO_VALUE.has(w) || i + 1 >= words.length) flags.push([w]);
    else flags.push([w, words[++i]!]);
  }
  return { positionals, flags };
}

/** `gq submit` for the dispatcher's five positionals and its flags. */
function submitCommand(p: readonly string[], flags: string[][]): string {
  const [name, jobfile, install, code, results] = p.map(shellWord);
  return ['gq submit', jobfile, '--name', name, '--install', install, '--code', code, '--results', results, ...translateFlags(flags)].join(' ');
}

const SCRIPT = /^(?:python[23]?|dispatcher|get_s3_files|update_tags)(?:\.py)?$/;

/**
 * The UserError that answers an older tool's command line given to gq, or undefined when argv is
 * not one (then yargs parses it as usual).
 */
export function oldToolAnswer(argv: readonly string[]): UserError | undefined {
  const [first, ...rest] = argv;
  if (first === undefined) return undefined;
  if (first === 'submit') {
    const { positionals, flags } = split(rest);
    if (positionals.length !== 5) return undefined;
    return new UserError('gq submit takes the job file and options, not the older tool\'s five arguments (jobname jobfile install_script code_folder results_file).', {
      hint: `The same job with gq: ${submitCommand(positionals, flags)}`,
    });
  }
  if (!SCRIPT.test(first)) return undefined;
  const words = /^python/.test(first) ? rest : argv;
  const script = (words[0] ?? '').replace(/^.*\//, '').replace(/\.py$/, '');
  const { positionals, flags } = split(words.slice(1));
  const p = positionals.map(shellWord);
  let equivalent: string;
  if (script === 'dispatcher' && positionals.length === 5) equivalent = submitCommand(positionals, flags);
  else if (script === 'dispatcher') equivalent = 'gq submit jobfile --name jobname --install install_script --code code_folder --results results_file';
  else if (script === 'get_s3_files') equivalent = `gq results ${p[0] ?? 'jobname'} --out ${p[1] ?? 'output_folder'}`;
  else if (script === 'update_tags') equivalent = `gq-agent tag ${p[0] ?? 'key'} ${p[1] ?? 'value'}  (inside a task)`;
  else return undefined;
  return new UserError(`${script}.py is the older Python tool's script; gq does the same with its own commands.`, {
    hint: `The same with gq: ${equivalent}`,
  });
}

/** Submit's flags of the older tool, as parsed by yargs (declared hidden in cli.ts). */
export interface OldSubmitFlags {
  create?: boolean;
  dispatch?: boolean;
  extra_input_code_path?: string[];
  extra_output_file?: string[];
  tag_offset?: number;
}

/** The older tool's spellings as gq's --input and --output, and a note for each flag gq does not need. */
export function submitFromOldFlags(a: OldSubmitFlags & { input?: string[]; output?: string[] }): { input?: string[]; output?: string[]; notes: string[] } {
  const notes: string[] = [];
  if (a.create || a.dispatch) {
    notes.push('note: -c/--create and -d/--dispatch are not needed: gq submit always starts the workers, and they start the tasks on their own.');
  }
  if (a.tag_offset !== undefined) notes.push('note: --tag_offset is not needed: gq names workers by their instance ids (or process ids locally).');
  const join = (x?: string[], y?: string[]) => (x || y ? [...(x ?? []), ...(y ?? [])] : undefined);
  return { input: join(a.input, a.extra_input_code_path), output: join(a.output, a.extra_output_file), notes };
}
