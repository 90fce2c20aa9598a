/**
 * Shell completion (`gq completion [bash|zsh]`): a script generated from gq's own --help texts,
 * so it completes exactly the commands and each command's options that yargs accepts, with no
 * Node start for them; only a job name asks gq (`gq completion --jobs`). Job names come from the
 * local status store when the backend is local, and on AWS from a cache of the job names this
 * machine's gq used recently: a TAB never makes an AWS call (no credential prompt, no latency).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dataHome, type Config } from '@gq/common';
import { openCliBackend } from './backend.js';

export type Shell = 'bash' | 'zsh';

export interface OptionSpec {
  flag: string;
  takesValue: boolean;
  choices: string[];
}

/** What a positional completes to: a job name, a file, one of its choices ("choices:a|b"), or nothing. */
export type PositionalKind = 'job' | 'file' | 'other' | `choices:${string}`;

/** One command: its name, what its positionals are, and its options. */
export interface CommandSpec {
  name: string;
  positionals: PositionalKind[];
  options: OptionSpec[];
}

/** The options of a help text (its option sections, not the examples), from unwrapped lines. */
export function optionsFromHelp(help: string): OptionSpec[] {
  const body = help.split(/^Examples:$/m)[0]!;
  const out: OptionSpec[] = [];
  for (const m of body.matchAll(/^ {2,}(?:-\w, )?(--[A-Za-z0-9_-]+)(.*)$/gm)) {
    const rest = m[2] ?? '';
    const choices = /\[choices: ([^\]]*)\]/.exec(rest)?.[1];
    out.push({
      flag: m[1]!,
      takesValue: !/\[boolean\]/.test(rest),
      choices: choices ? [...choices.matchAll(/"([^"]*)"/g)].map((c) => c[1]!) : [],
    });
  }
  return out;
}

/** The commands of the top-level help ("  gq submit <jobfile>  ..."), with their positionals. */
export function commandsFromHelp(help: string): Array<{ name: string; positionals: string[] }> {
  const section = help.split(/^Commands:$/m)[1]?.split(/^\S/m)[0] ?? '';
  return [...section.matchAll(/^ {2}gq ([a-z][a-z-]*)((?: [<[][^\]>]+[\]>])*)/gm)].map((m) => ({
    name: m[1]!,
    positionals: [...(m[2] ?? '').matchAll(/[<[]([^\]>.]+)(?:\.\.)?[\]>]/g)].map((p) => p[1]!),
  }));
}

/** A command's spec from its own help text: its options, and what each positional completes to. */
export function commandSpec(name: string, positionals: readonly string[], help: string): CommandSpec {
  const section = help.split(/^Positionals:$/m)[1]?.split(/^\S/m)[0] ?? '';
  const kinds = positionals.map((p): PositionalKind => {
    const choices = new RegExp(`^ {2}${p} .*\\[choices: ([^\\]]*)\\]`, 'm').exec(section)?.[1];
    if (choices) return `choices:${[...choices.matchAll(/"([^"]*)"/g)].map((c) => c[1]!).join('|')}`;
    return p === 'name' ? 'job' : /file$/.test(p) ? 'file' : 'other';
  });
  return { name, positionals: kinds, options: optionsFromHelp(help) };
}

const words = (xs: readonly string[]) => xs.join(' ');

/**
 * The bash completion function. It reads only COMP_WORDS and COMP_CWORD (and its $2, the current
 * word), so that zsh can run it too through bashcompinit.
 */
function bashFunction(commands: readonly CommandSpec[], globalOptions: readonly OptionSpec[]): string {
  const valueOpts = new Set<string>();
  const choices = new Map<string, string[]>();
  for (const o of [...globalOptions, ...commands.flatMap((c) => c.options)]) {
    if (o.takesValue) valueOpts.add(o.flag);
    if (o.choices.length) choices.set(o.flag, o.choices);
  }
  const cases = commands
    .map((c) => `    ${c.name}) opts=${JSON.stringify(words(c.options.map((o) => o.flag)))}; pos=(${words(c.positionals.map((k) => `'${k}'`))}) ;;`)
    .join('\n');
  const choiceCases = [...choices].map(([flag, cs]) => `    ${flag}) COMPREPLY=($(compgen -W ${JSON.stringify(words(cs))} -- "$cur")); return 0 ;;`).join('\n');
  return `_gq_completions() {
  local cur="$2" prev="" prog="" cmd="" backend="" opts="" kind="" n=0 w i=0 npos=0 skip=0
  local -a pos bflag
  for w in "\${COMP_WORDS[@]}"; do
    if [ "$i" -ge "$COMP_CWORD" ]; then break; fi
    if [ "$i" = 0 ]; then prog="$w"
    else
      if [ "$skip" = 1 ]; then skip=0; [ "$prev" = --backend ] && backend="$w"
      else
        case "$w" in
          --*=*) [ "\${w%%=*}" = --backend ] && backend="\${w#*=}" ;;
          -*) case " $__gq_value_opts " in *" $w "*) skip=1 ;; esac ;;
          *) if [ -z "$cmd" ]; then cmd="$w"; else npos=$((npos + 1)); fi ;;
        esac
      fi
    fi
    prev="$w"
    i=$((i + 1))
  done
  COMPREPLY=()
  if [ "$skip" = 1 ]; then
    case "$prev" in
${choiceCases}
    esac
    return 0
  fi
  if [ -z "$cmd" ]; then
    case "$cur" in
      -*) COMPREPLY=($(compgen -W ${JSON.stringify(words(globalOptions.map((o) => o.flag)))} -- "$cur")) ;;
      *) COMPREPLY=($(compgen -W ${JSON.stringify(words(commands.map((c) => c.name)))} -- "$cur")) ;;
    esac
    return 0
  fi
  case "$cmd" in
${cases}
    *) return 0 ;;
  esac
  case "$cur" in
    -*) COMPREPLY=($(compgen -W "$opts" -- "$cur")); return 0 ;;
  esac
  n=0
  for kind in "\${pos[@]}"; do
    if [ "$n" = "$npos" ]; then
      case "$kind" in
        job)
          if [ -n "$backend" ]; then bflag=(--backend "$backend"); fi
          COMPREPLY=($(compgen -W "$("$prog" completion --jobs "\${bflag[@]}" 2>/dev/null)" -- "$cur")) ;;
        choices:*) kind="\${kind#choices:}"; COMPREPLY=($(compgen -W "\${kind//|/ }" -- "$cur")) ;;
      esac
      return 0
    fi
    n=$((n + 1))
  done
  return 0
}
__gq_value_opts=${JSON.stringify(words([...valueOpts]))}`;
}

/** The completion script for `shell`. */
export function completionScript(shell: Shell, commands: readonly CommandSpec[], globalOptions: readonly OptionSpec[]): string {
  const fn = bashFunction(commands, globalOptions);
  if (shell === 'bash') {
    return `# gq completion for bash. Install: gq completion bash > ~/.local/share/bash-completion/completions/gq
# (or add to ~/.bashrc: eval "$(gq completion bash)")
${fn}
complete -o default -F _gq_completions gq
`;
  }
  return `#compdef gq
# gq completion for zsh (the bash function, run by zsh's bashcompinit).
# Install: add to ~/.zshrc: eval "$(gq completion zsh)"
(( $+functions[compdef] )) || { autoload -U +X compinit && compinit -u }
autoload -U +X bashcompinit && bashcompinit
${fn}
complete -o default -F _gq_completions gq
`;
}

/** The recent job names file of the AWS backend (per stack): completion never calls AWS. */
function recentFile(config: Config): string {
  return join(dataHome(config), 'completion', `aws-jobs-${config.stack}.txt`);
}

/** How many job names the AWS cache keeps. */
const RECENT_MAX = 200;

/** Records a job name that an AWS command just used, newest first; a failure to write is ignored. */
export function rememberJob(config: Config, name: string): void {
  if (config.backend !== 'aws') return;
  try {
    const file = recentFile(config);
    const old = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    const names = [name, ...old.filter((n) => n !== name)].slice(0, RECENT_MAX);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(`${file}.tmp`, names.join('\n') + '\n');
    renameSync(`${file}.tmp`, file);
  } catch {
    /* completion only: never fail a command for it */
  }
}

/** Job names for completion: the local store's jobs, or the AWS names used recently on this machine. */
export async function jobNames(config: Config): Promise<string[]> {
  if (config.backend === 'aws') {
    const file = recentFile(config);
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  }
  // No state yet: no job, and no gq.db created for a TAB.
  if (!existsSync(join(dataHome(config), 'gq.db'))) return [];
  const backend = await openCliBackend(config);
  try {
    return (await backend.status.listJobs()).map((j) => j.name);
  } finally {
    await backend.close();
  }
}
