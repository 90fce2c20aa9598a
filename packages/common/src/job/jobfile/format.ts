/**
 * The job file (`jobdetails.csv`) format: its rules, its header and its limits.
 *
 * Format: UTF-8 CSV text, a header line naming the two columns `instance_type` and `command`,
 * then one task per line:
 *
 *     instance_type,command
 *     t3.micro,python run.py --seed 1
 *     c5.2xlarge,"python run.py --label ""a,b"""
 *
 * Rules (decided in this folder, shown to users by the error messages):
 * - CSV as in RFC 4180: a field that starts with `"` is quoted; inside it `""` is a quote, and
 *   commas and line breaks are kept. A quote *inside* an unquoted field is kept as-is (so
 *   `t3.micro,echo "hi"` works, as it does with Python's csv module and Excel). After the closing
 *   quote of a quoted field only a comma or the end of the line may follow.
 * - Lines end with LF, CRLF or a lone CR (mixed endings are fine). A UTF-8 byte order mark is
 *   skipped. A trailing newline is optional. Inside a quoted field CRLF becomes LF.
 * - The header names are matched case-insensitively with surrounding whitespace trimmed, and may
 *   come in either order. Extra or duplicate columns are an error (header.ts).
 * - Blank lines (empty, only whitespace, or only commas and whitespace as spreadsheets write
 *   them) are skipped anywhere. They do not get a task number, but every error message uses the
 *   physical line number in the file (line 1 = first line, counting blank lines and the lines of
 *   multi-line quoted commands).
 * - `task` is the 1-based number of the row among the data rows: with no blank lines, file line 2
 *   is task 1.
 * - The instance type is trimmed; it must be an EC2 instance type (`family.size`, lower case) or
 *   `local` (instance-types.ts). The command is kept exactly as written (no trimming) and must not
 *   be empty, only whitespace, contain a NUL byte, or be longer than MAX_COMMAND_BYTES (rows.ts).
 * - Every row is checked; all problems are reported together in one JobFileError (a UserError,
 *   problems.ts). A row with a quote problem (text after the closing quote of a quoted field) is
 *   reported without further checks; csv-parse reads on after such a quote as if the field were
 *   unquoted, so a later quote on the same line can open a quoted field that runs into the next
 *   lines. A quote that is never closed makes the rest of the file one field, so it is the last
 *   problem reported, together with those found before it.
 *
 * The CSV is read by csv-parse (see csv.ts for how: in pieces, with line numbers counted there,
 * and a second, strict look at records that may hold a malformed quoted field). It costs about
 * 1.7 s of CPU time for 1,000,000 rows on a 2-core machine, about as much as csv-parse alone
 * parsing the whole file at once (`npm run bench:jobfile` measures both in one run).
 * packages/common/test/jobfile.test.ts checks it against csv-stringify with random commands.
 */

/**
 * Largest command, in UTF-8 bytes: 128 KiB − 1. The agent runs a command as one argument of
 * `sh -c`, and Linux refuses a single argument of 128 KiB or more (MAX_ARG_STRLEN, counted with
 * its terminating NUL) with E2BIG. It also keeps a task record well under DynamoDB's 400 KB
 * item limit. Longer commands belong in a script in the code folder.
 */
export const MAX_COMMAND_BYTES = 128 * 1024 - 1;

/**
 * Largest job file, in bytes (200 MiB). Bigger files are refused before they are read. A file is
 * read whole: a 50 MB file of 1,000,000 tasks takes about 0.2 GB of memory while it is parsed.
 */
export const MAX_JOB_FILE_BYTES = 200 * 1024 * 1024;

/**
 * Longest instance type: queue names are `gq-<job>-<instance type>-dlq`, at most 80 characters,
 * with a job name of at most 40. The longest real one (`u7in-32tb.224xlarge`) has 19.
 */
export const MAX_INSTANCE_TYPE_LENGTH = 32;

/** The two columns of a job file, in the usual order. */
export const JOB_FILE_HEADER = 'instance_type,command';

/** The column names, as problems name them. */
export const IT = 'instance_type';
export const CMD = 'command';

/** Problems listed in a JobFileError unless the caller asks for another number. */
export const DEFAULT_MAX_JOB_FILE_PROBLEMS = 20;
