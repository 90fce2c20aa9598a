/**
 * Errors shared by every gq package. A `UserError` is something the user can fix: the CLI prints
 * its message and hint and exits 1, with no stack trace. Anything else is a bug.
 */
export class GqError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A problem the user can fix (bad input, missing set-up). Printed as-is with its hint. */
export class UserError extends GqError {
  readonly hint: string | undefined;
  readonly details: readonly string[];
  constructor(message: string, opts: { hint?: string; details?: readonly string[]; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.hint = opts.hint;
    this.details = opts.details ?? [];
  }
}

/** A state change that the state machine does not allow (a bug, or a lost race seen as a bug). */
export class IllegalTransitionError extends GqError {}

