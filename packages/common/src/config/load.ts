/** Load the configuration: flags → environment → config file → defaults, validated by one schema. */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { ENV } from '../env.js';
import { configSchema, configShape, envNameOf, type Config } from './schema.js';

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
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`Config file ${file} is not valid JSON: ${(e as Error).message}`, {
      hint: 'Fix the file, or point GQ_CONFIG at another one.',
    });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UserError(`Config file ${file} must hold a JSON object of settings.`, {
      hint: `Example: {"backend": "local", "retries": 2}`,
    });
  }
  return parsed as Record<string, unknown>;
}

function fromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(configShape)) {
    const v = env[envNameOf(key)];
    if (v === undefined || v === '') continue;
    if (key === 'ami') {
      try {
        out[key] = JSON.parse(v);
      } catch {
        out[key] = { '*': v };
      }
    } else if (key === 'spot') out[key] = v === '1' || v.toLowerCase() === 'true';
    else out[key] = v;
  }
  if (out.region === undefined && env.AWS_REGION) out.region = env.AWS_REGION;
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
    const details = result.error.issues.map((i) => {
      const key = String(i.path[0] ?? '');
      if (i.code === 'unrecognized_keys') {
        return `unknown setting(s) ${i.keys.map((k) => `"${k}"`).join(', ')} in ${origin[i.keys[0]!] ?? file}`;
      }
      const where = origin[key] ?? 'defaults';
      const envHint = key ? ` (flag --${key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}, env ${envNameOf(key)})` : '';
      return `setting "${key}" from ${where}${envHint}: ${i.message}`;
    });
    throw new UserError(`Invalid configuration: ${details[0]}`, {
      details: details.slice(1),
      hint: `Valid settings: ${Object.keys(configShape).join(', ')}.`,
    });
  }
  return result.data;
}
