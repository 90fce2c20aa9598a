/** What a job costs: AWS billing, spend and estimates, the on-demand price table (pure). */
export * from './billing.js';
export * from './spend.js';
export * from './prices.js';
export * from './estimate.js';
export * from './cap.js';
export * from './price-list.js';
export * from './eta.js';
