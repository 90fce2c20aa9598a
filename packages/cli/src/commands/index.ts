/** Folder cli/src/commands: one module per `gq` command, each a `run…(ctx, args)` that returns the exit code (setup, doctor and prices load lazily). */
export { runSubmit } from './submit.js';
export { runStatus } from './status.js';
export { runResults } from './results.js';
export { runLogs } from './logs.js';
export { runCancel } from './cancel.js';
export { runRetry } from './retry.js';
export { runClean } from './clean.js';
export { runResume } from './resume.js';
export { runReport } from './report.js';
