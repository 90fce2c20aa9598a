/** @gq/common: the four ports (ports.ts) and their errors, the job model and its pure rules, settings, logging, and both backends (aws/, local/) behind the ports. */
export * from './errors.js';
export * from './env.js';
export * from './time.js';
export * from './backoff.js';
export * from './log.js';
export * from './ports.js';
export * from './port-errors.js';
export * from './job/states.js';
export * from './job/model.js';
export * from './config/schema.js';
export * from './config/load.js';
export * from './job/transitions.js';
export * from './job/jobfile/index.js';
export * from './job/names.js';
export * from './job/slots.js';
export * from './job/dead-letters.js';
export * from './cost/index.js';
