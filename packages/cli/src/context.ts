/**
 * What every command is handed: the resolved configuration, a logger and a way to print. Commands
 * never call process.exit; they return an exit code (or throw a UserError) and cli.ts exits.
 */
import { redactText, type Config, type Logger } from '@gq/common';

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

/** Lines go through the same redaction as the logs (registered secrets never reach the terminal). */
export const stdio: Output = {
  out: (line) => process.stdout.write(redactText(line) + '\n'),
  err: (line) => process.stderr.write(redactText(line) + '\n'),
};
