/**
 * What every command is handed: the resolved configuration, a logger and a way to print. Commands
 * never call process.exit; they return an exit code (or throw a UserError) and cli.ts exits.
 */
import type { Config, Logger } from '@gq/common';

export interface Output {
  /** A line for the user (stdout). */
  out(line: string): void;
  /** A line of diagnostics (stderr). */
  err(line: string): void;
}

export interface CommandContext {
  config: Config;
  log: Logger;
  io: Output;
}

export const stdio: Output = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
};
