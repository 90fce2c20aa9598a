/** The job file (jobdetails.csv): its format, the one parse that checks it and gives the tasks with their lines, its problems. */
export {
  DEFAULT_MAX_JOB_FILE_PROBLEMS,
  JOB_FILE_HEADER,
  MAX_COMMAND_BYTES,
  MAX_INSTANCE_TYPE_LENGTH,
  MAX_JOB_FILE_BYTES,
} from './format.js';
export { isEc2InstanceType, isValidInstanceType, LOCAL_INSTANCE_TYPE, suggestInstanceType } from './instance-types.js';
export {
  parseJobFile,
  parseJobFileWithLines,
  parseJobText,
  parseJobTextWithLines,
  type ParsedJobFile,
  type ParseJobOptions,
} from './parse.js';
export { formatJobFileProblem, JobFileError, type JobFileProblem } from './problems.js';
