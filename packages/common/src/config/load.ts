/** Load the configuration: flags → environment → config file → defaults, validated by one schema. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { closest } from '../edit-distance.js';
import { UserError } from '../errors.js';
import { ENV } from '../env.js';
import { configSchema, configShape, envNameOf, SETTING_EXPECTS, type Config, type SettingName } from './schema.js';

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(xdg, 'gq');
}

export function configFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return env[ENV.CONFIG] || join(configDir(env), 'config.json');
}

/** The local backend's data folder: GQ_HOME, else $XDG_DATA_HOME/gq, else ~/.local/share/gq. */
export function dataHome(config: Pick<Config, 'home'>, env: NodeJS.ProcessEnv = process.env): string {
  if (config.home) return config.home;
  if (env[ENV.HOME]) return env[ENV.HOME]!;
  const xdg = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share');
  return join(xdg, 'gq');
}

function readConfigFile(file: string): Record<string, unknown> {
  if (!existsSync(file)) return {};
  let text: string;
  try {
    if (statSync(file).isDirectory()) {
      throw new UserError(`Config file ${file} is a folder, not a file.`, {
        hint: 'Point GQ_CONFIG at a JSON file such as ~/.config/gq/config.json, or unset it.',
      });
    }
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`Config file ${file} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}.`, {
      hint: `Check its permissions (ls -l ${file}), or point GQ_CONFIG at another file.`,
    });
  }
  if (text.trim() === '') {
    throw new UserError(`Config file ${file} is empty.`, {
      hint: 'Write a JSON object of settings in it, e.g. {"backend": "local", "retries": 2}, or delete the file.',
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UserError(`Config file ${file} is not valid JSON: ${jsonErrorWhere(text, e as Error)}`, {
      hint: 'Fix the file (a JSON object such as {"backend": "aws", "region": "us-east-1"}), or point GQ_CONFIG at another one.',
    });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UserError(`Config file ${file} must hold a JSON object of settings, not ${Array.isArray(parsed) ? 'an array' : parsed === null ? 'null' : `a ${typeof parsed}`}.`, {
      hint: `Example: {"backend": "local", "retries": 2}`,
    });
  }
  return parsed as Record<string, unknown>;
}

/** A JSON.parse error with the line and column it points at, when it names a position. */
function jsonErrorWhere(text: string, e: Error): string {
  const oneLine = e.message.replace(/\s*\n\s*/g, ' ');
  const m = /position (\d+)/.exec(oneLine);
  if (!m) return oneLine;
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  return `${oneLine.replace(/ in JSON at position \d+.*$/, '')} (line ${line}, column ${column})`;
}

/** `text` as JSON, or as it is when it is not JSON (the schema then says what is wrong with it). */
function parseJsonOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function fromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(configShape)) {
    const v = env[envNameOf(key)];
    if (v === undefined || v === '') continue;
    if (key === 'spotAlternatives' && v.trim().startsWith('{')) {
      try {
        out[key] = JSON.parse(v);
      } catch {
        out[key] = v; // refused by the schema, which names the setting
      }
    } else if (key === 'ami') {
      try {
        out[key] = JSON.parse(v);
      } catch {
        out[key] = { '*': v };
      }
    } else if (key === 'slots') out[key] = v.trim().startsWith('{') ? parseJsonOr(v) : v; else if (key === 'spot' || key === 'taskAwsAccess') out[key] = v === '1' || v.toLowerCase() === 'true';
    else out[key] = v;
  }
  // The AWS CLI's order: AWS_REGION, then AWS_DEFAULT_REGION (the profile's region comes last,
  // read by the submitter's aws/region.ts only when an AWS command needs it).
  if (out.region === undefined && (env.AWS_REGION || env.AWS_DEFAULT_REGION)) out.region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (out.profile === undefined && env.AWS_PROFILE) out.profile = env.AWS_PROFILE;
  return out;
}

/**
 * Resolve the configuration. `flags` holds only the settings given on the command line
 * (undefined values are ignored). Errors name the setting and where it came from.
 */
export function loadConfig(flags: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const file = configFilePath(env);
  const layers: Array<[string, Record<string, unknown>]> = [
    [`config file ${file}`, readConfigFile(file)],
    ['environment', fromEnv(env)],
    ['command line', Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined))],
  ];
  const merged: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  for (const [where, layer] of layers) {
    for (const [k, v] of Object.entries(layer)) {
      merged[k] = v;
      origin[k] = where;
    }
  }
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const problems = result.error.issues.map((i) => describeIssue(i, merged, origin, file));
    const first = problems[0]!;
    throw new UserError(`Invalid configuration: ${first.message}`, {
      details: problems.slice(1).map((p) => p.message),
      hint: first.hint,
    });
  }
  return result.data;
}

const flagOf = (key: string) => `--${key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`;

function show(v: unknown): string {
  if (typeof v === 'number' && Number.isNaN(v)) return 'not a number';
  const s = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** The setting `key` was probably meant to be (max-instances, MaxInstances, retry → maxInstances, retries). */
export function suggestSetting(key: string): string | undefined {
  const norm = (k: string) => k.toLowerCase().replace(/[-_ ]/g, '');
  const names = Object.keys(configShape);
  const exact = names.find((n) => norm(n) === norm(key) || norm(envNameOf(n).slice(3)) === norm(key));
  if (exact) return exact;
  return closest(key, names, 3, norm);
}

interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
}

/** One schema issue as a sentence naming the setting, its value and where it came from, with a fix. */
function describeIssue(i: Issue, merged: Record<string, unknown>, origin: Record<string, string>, file: string): { message: string; hint: string } {
  const valid = `Valid settings: ${Object.keys(configShape).join(', ')}.`;
  if (i.code === 'unrecognized_keys' && i.keys) {
    const where = origin[i.keys[0]!] ?? `config file ${file}`;
    const guesses = i.keys.map((k) => [k, suggestSetting(k)] as const).filter(([, g]) => g);
    return {
      message: `unknown setting${i.keys.length === 1 ? '' : 's'} ${i.keys.map((k) => `"${k}"`).join(', ')} in ${where}.`,
      hint: `${guesses.map(([k, g]) => `For "${k}", did you mean "${g}"? `).join('')}${valid} Keys are camelCase in the config file (e.g. "maxInstances").`,
    };
  }
  const key = String(i.path[0] ?? '');
  const where = origin[key] ?? 'the defaults';
  if (!(key in SETTING_EXPECTS)) return { message: `${where}: ${i.message}`, hint: valid };
  const expects = SETTING_EXPECTS[key as SettingName];
  const value = merged[key];
  const fromFile = where.startsWith('config file');
  const fix = fromFile
    ? `Fix "${key}" in ${file}, e.g. "${key}": ${/^[\d{]|^true$/.test(expects.example) ? expects.example : JSON.stringify(expects.example)}.`
    : where === 'environment'
      ? `Fix ${envNameOf(key)} in the environment, e.g. ${envNameOf(key)}=${expects.example}.`
      : `Give ${flagOf(key)} ${expects.what}, e.g. ${flagOf(key)} ${expects.example}.`;
  return {
    message: `setting "${key}" from ${where} (flag ${flagOf(key)}, env ${envNameOf(key)}) is ${show(value)}; it must be ${expects.what}.`,
    hint: fix,
  };
}
