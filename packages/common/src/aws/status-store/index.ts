/** The DynamoDB StatusStore: item layout, expression building, the read-decide-write loop and the store on one table. */
export {
  commandItem,
  commandSk,
  counterSk,
  DEFAULT_COUNTER_SHARDS,
  FAILED_INDEX,
  FAILED_PK,
  FAILED_SK,
  instanceItem,
  instanceSk,
  JOB_SK,
  jobPk,
  JOBS_PK,
  jobsIndexSk,
  MAX_COUNTER_SHARDS,
  taskItem,
  taskSk,
} from './items.js';
export { counterUpdate, instanceBusyUpdate, taskUpdate } from './expressions.js';
export { busyDetail } from '../../job/model.js';
export { classifyWriteError, type WriteOutcome } from './write-outcome.js';
export { countTasksByState } from './reads.js';
export { CREATE_CHUNK } from './bulk.js';
export { CREATE_TASKS_PER_TRANSACTION } from './create.js';
export { DynamoStatusStore, type DynamoStatusStoreOptions } from './store.js';
