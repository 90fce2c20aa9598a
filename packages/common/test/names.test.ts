import { describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import {
  JOB_NAME_MAX_LENGTH,
  JOB_NAME_RULES,
  RESERVED_JOB_NAMES,
  deriveJobName,
  isValidJobName,
  jobNameProblems,
  randomJobSuffix,
  suggestJobName,
  validateJobName,
} from '../src/job/names.js';

/** The UserError that validateJobName throws for `name`. */
function rejection(name: string): UserError {
  try {
    validateJobName(name);
  } catch (err) {
    if (err instanceof UserError) return err;
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(name)} to be rejected`);
}

describe('validateJobName', () => {
  it.each(['abc', 'my-job', 'jobdetails-k3x9', 'a1b2c3', 'sweep-2024-06-01', 'x'.repeat(40), 'gq-test', 'locals'])(
    'accepts %j',
    (name) => {
      expect(() => validateJobName(name)).not.toThrow();
      expect(isValidJobName(name)).toBe(true);
    },
  );

  it('says how long a too-long name is and what the limit is', () => {
    const name = 'a'.repeat(47);
    const err = rejection(name);
    expect(err.message).toBe(`Invalid job name "${name}": it is 47 characters long; the limit is 40.`);
    expect(err.hint).toContain('Did you mean "' + 'a'.repeat(40) + '"?');
  });

  it('rejects a name of 41 characters and accepts 40', () => {
    expect(isValidJobName('a'.repeat(JOB_NAME_MAX_LENGTH))).toBe(true);
    expect(rejection('a'.repeat(41)).message).toContain('41 characters long; the limit is 40');
  });

  it('says when a name is too short', () => {
    expect(rejection('ab').message).toContain('it is 2 characters long; the minimum is 3');
  });

  it('suggests the lower-cased name for upper case', () => {
    const err = rejection('MyJob');
    expect(err.message).toBe('Invalid job name "MyJob": it has upper-case letters; job names are lower case.');
    expect(err.hint).toMatch(/^Did you mean "myjob"\? /);
  });

  it.each(['gq', 'aws', 'all', 'local', 'status', 'jobs', 'bundles', 'agent'])('rejects the reserved name %j', (name) => {
    expect(RESERVED_JOB_NAMES.has(name)).toBe(true);
    const err = rejection(name);
    expect(err.message).toContain(`"${name}" is reserved by gq`);
  });

  it.each([
    ['jobs/x', '"/"'],
    ['../etc', '".."'],
    ['a\\b\\c', '"\\"'],
    ['config/jobdetails.csv', '"/"'],
  ])('says %j has path characters', (name, shown) => {
    const err = rejection(name);
    expect(err.message).toContain('a job name cannot contain path characters');
    expect(err.message).toContain(shown);
    expect(err.message).toContain('it is a name, not a file path');
  });

  it('suggests a name from the last part of a path', () => {
    expect(rejection('config/jobdetails.csv').hint).toMatch(/^Did you mean "jobdetails-csv"\?/);
  });

  it.each([
    ['my_job', 'it contains "_"; only a–z, 0–9 and - are allowed', 'my-job'],
    ['my job', 'it contains space; only a–z, 0–9 and - are allowed', 'my-job'],
    ['1job', 'it starts with "1"; a job name starts with a letter', 'job-1job'],
    ['-job', 'it starts with "-"', 'job'],
    ['job-', 'it ends with a hyphen', 'job'],
    ['my--job', 'it contains "--"', 'my-job'],
    ['café', 'it contains "é"', 'cafe'],
    ['a.b.c', 'it contains "."', 'a-b-c'],
  ])('rejects %j: %s', (name, problem, suggestion) => {
    const err = rejection(name);
    expect(err.message).toContain(problem);
    expect(err.hint).toContain(`Did you mean "${suggestion}"?`);
    expect(err.hint).toContain(JOB_NAME_RULES);
  });

  it('lists every broken rule in the details', () => {
    const err = rejection('My_Job--');
    expect(err.details).toEqual([
      'it has upper-case letters; job names are lower case',
      'it contains "_"; only a–z, 0–9 and - are allowed',
      'it ends with a hyphen',
      'it contains "--" (two hyphens in a row)',
    ]);
  });

  it('says when the name is empty', () => {
    expect(rejection('').message).toBe('Invalid job name "": the job name is empty.');
    expect(jobNameProblems('')).toEqual(['the job name is empty']);
  });

  it('has rules text for --help', () => {
    expect(JOB_NAME_RULES).toContain('3–40 characters');
    expect(JOB_NAME_RULES).toContain('starts with a letter');
    expect(JOB_NAME_RULES).toContain('gq, aws, all, local, status, jobs, bundles, agent');
  });

  it('keeps SQS queue names within 80 characters', () => {
    // gq-<job>-<instance type>-dlq, with the longest allowed instance type (32 characters).
    expect(`gq-${'a'.repeat(JOB_NAME_MAX_LENGTH)}-${'b'.repeat(32)}-dlq`.length).toBeLessThanOrEqual(80);
  });
});

describe('deriveJobName', () => {
  it('derives jobdetails-xxxx from config/jobdetails.csv', () => {
    const name = deriveJobName('config/jobdetails.csv');
    expect(name).toMatch(/^jobdetails-[a-z0-9]{4}$/);
    expect(isValidJobName(name)).toBe(true);
  });

  it('uses a given suffix', () => {
    expect(deriveJobName('config/jobdetails.csv', 'ab12')).toBe('jobdetails-ab12');
    expect(deriveJobName('/abs/path/sweep.csv', 'X_1')).toBe('sweep-x-1');
    expect(deriveJobName('sweep.csv', '')).toBe('sweep');
  });

  it('gives different suffixes', () => {
    const names = new Set(Array.from({ length: 50 }, () => deriveJobName('jobdetails.csv')));
    expect(names.size).toBeGreaterThan(45);
    expect(randomJobSuffix()).toMatch(/^[a-z0-9]{4}$/);
  });

  it.each([
    ['My Job (v2).csv', /^my-job-v2-[a-z0-9]{4}$/],
    ['123.csv', /^job-123-[a-z0-9]{4}$/],
    ['ünïcode.csv', /^unicode-[a-z0-9]{4}$/],
    ['日本語.csv', /^job-[a-z0-9]{4}$/],
    ['.csv', /^job-[a-z0-9]{4}$/],
    ['jobs.csv', /^jobs-[a-z0-9]{4}$/],
    ['C:\\Users\\me\\Runs\\Sweep_A.CSV', /^sweep-a-[a-z0-9]{4}$/],
    ['--weird--name--.tsv', /^weird-name-[a-z0-9]{4}$/],
    ['data.tar.csv', /^data-tar-[a-z0-9]{4}$/],
    ['no-extension', /^no-extension-[a-z0-9]{4}$/],
    [`${'long'.repeat(30)}.csv`, /^(long){8}lon-[a-z0-9]{4}$/],
    [`${'ab-'.repeat(30)}.csv`, /^[a-z-]+-[a-z0-9]{4}$/],
  ])('derives a valid name from %j', (file, pattern) => {
    const name = deriveJobName(file);
    expect(name).toMatch(pattern);
    expect(jobNameProblems(name)).toEqual([]);
    expect(name.length).toBeLessThanOrEqual(JOB_NAME_MAX_LENGTH);
  });

  it('stays valid with no suffix for short or reserved stems', () => {
    for (const file of ['gq.csv', 'local.csv', 'a.csv', '1.csv', 'status', '']) {
      const name = deriveJobName(file, '');
      expect(jobNameProblems(name), `${file} → ${name}`).toEqual([]);
    }
    expect(deriveJobName('local.csv', '')).toBe('local-job');
  });

  it('stays valid for many odd file names', () => {
    const odd = ['x', ' ', '-', '..', 'a b', 'Ωmega.csv', 'ß.csv', '🎉.csv', 'x'.repeat(300), 'A--B', '9-9-9', '__init__.py'];
    for (const file of odd) {
      for (const suffix of [undefined, '', 'zz', 'VERY-long-suffix-that-goes-on']) {
        expect(isValidJobName(deriveJobName(file, suffix)), `${file} / ${suffix}`).toBe(true);
      }
    }
  });
});

describe('suggestJobName', () => {
  it('returns a valid name or nothing', () => {
    expect(suggestJobName('My Job')).toBe('my-job');
    expect(suggestJobName('gq')).toBe('gq-job');
    expect(suggestJobName('!!!')).toBe('job');
  });
});

describe('jobRoleName (IAM role and instance profile of a job)', () => {
  it('is gq-<job>-<region>, within IAM\'s 64 characters for the longest job name and region', async () => {
    const { jobRoleName } = await import('../src/aws/names.js');
    expect(jobRoleName('my-job', 'us-east-1')).toBe('gq-my-job-us-east-1');
    const longest = jobRoleName('a'.repeat(40), 'ap-southeast-5');
    expect(longest).toBe(`gq-${'a'.repeat(40)}-ap-southeast-5`);
    expect(longest.length).toBeLessThanOrEqual(64);
    expect(longest).toMatch(/^[\w+=,.@-]{1,64}$/);
  });

  it('refuses a bad job name or region', async () => {
    const { jobRoleName } = await import('../src/aws/names.js');
    expect(() => jobRoleName('Bad_Name', 'us-east-1')).toThrow(/invalid job name/);
    expect(() => jobRoleName('my-job', 'mars-1')).toThrow(/invalid AWS region/);
  });
});

describe('one job-name rule for the CLI and the AWS names', () => {
  it('is the same function in both places', async () => {
    const aws = await import('../src/aws/names.js');
    expect(aws.isValidJobName).toBe(isValidJobName);
  });

  it('makes the AWS names refuse what the CLI refuses, with the same reason', async () => {
    const { groupName, jobRoleName, queueName } = await import('../src/aws/names.js');
    for (const bad of ['ab', '1job', 'job-', 'my--job', 'local', 'My-Job']) {
      const reason = jobNameProblems(bad)[0];
      expect(reason, bad).toBeDefined();
      const message = `invalid job name "${bad}": ${reason}`;
      expect(() => queueName(bad, 't3.micro'), bad).toThrow(message);
      expect(() => groupName(bad, 't3.micro'), bad).toThrow(message);
      expect(() => jobRoleName(bad, 'us-east-1'), bad).toThrow(message);
    }
    expect(queueName('abc', 't3.micro')).toBe('gq-abc-t3_micro');
  });
});
