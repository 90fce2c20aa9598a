/** The on-demand fallback's pure rules (job/on-demand.ts) and the names of its queues and groups (aws/names.ts). */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SPOT_INTERRUPTIONS, movedCounter, movesToOnDemand, poolsOf, queueFor } from '../src/job/on-demand.js';
import { deadLetterQueueName, groupName, launchTemplateName, queueName } from '../src/aws/names.js';

describe('queueFor', () => {
  const job = { spotInterruptions: 2 };
  it('keeps a task on Spot until its interruptions reach the limit, then on-demand', () => {
    expect(queueFor({}, job)).toBe('main');
    expect(queueFor({ interruptions: 1 }, job)).toBe('main');
    expect(queueFor({ interruptions: 2 }, job)).toBe('on-demand');
    expect(queueFor({ interruptions: 7 }, job)).toBe('on-demand');
  });
  it('never falls back without a limit (0, absent: jobs without Spot)', () => {
    expect(queueFor({ interruptions: 9 }, { spotInterruptions: 0 })).toBe('main');
    expect(queueFor({ interruptions: 9 }, {})).toBe('main');
  });
  it('a write moves a task when it takes its interruptions to the limit, only then', () => {
    expect(movesToOnDemand({ interruptions: 1 }, { interruptions: 2 }, job)).toBe(true);
    expect(movesToOnDemand({}, { interruptions: 1 }, job)).toBe(false);
    expect(movesToOnDemand({ interruptions: 2 }, { interruptions: 3 }, job)).toBe(false);
    expect(movesToOnDemand({ interruptions: 2 }, { interruptions: 2 }, job)).toBe(false);
    expect(movesToOnDemand({ interruptions: 1 }, { interruptions: 2 }, {})).toBe(false);
    expect(movedCounter('c5.large')).toBe('moved:c5.large');
  });
  it('gives a falling-back job two pools per type, others one', () => {
    expect(poolsOf(job)).toEqual(['main', 'on-demand']);
    expect(poolsOf({})).toEqual(['main']);
    expect(poolsOf({ spotInterruptions: 0 })).toEqual(['main']);
    expect(DEFAULT_SPOT_INTERRUPTIONS).toBe(3);
  });
});

describe('names of the on-demand pool', () => {
  it('are the type\'s own names with -od', () => {
    expect(queueName('sim-1', 'c5.2xlarge', 'on-demand')).toBe('gq-sim-1-c5_2xlarge-od');
    expect(deadLetterQueueName('sim-1', 'c5.2xlarge', 'on-demand')).toBe('gq-sim-1-c5_2xlarge-od-dlq');
    expect(groupName('sim-1', 'c5.2xlarge', 'on-demand')).toBe('gq-sim-1-c5.2xlarge-od');
    expect(launchTemplateName('sim-1', 'c5.2xlarge', 'on-demand')).toBe('gq-sim-1-c5.2xlarge-od');
    expect(queueName('sim-1', 'c5.2xlarge', 'main')).toBe(queueName('sim-1', 'c5.2xlarge'));
  });
  it('stay within the SQS, template and group limits and apart from the main pool for the longest inputs', () => {
    // SQS: 1-80 of [A-Za-z0-9_-] (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html);
    // launch templates 3-128 of [A-Za-z0-9().\-/_] (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplate.html).
    const job = 'a'.repeat(40);
    for (const type of ['c5.2xlarge', 'u7in-32tb.224xlarge', `${'x'.repeat(16)}.${'y'.repeat(16)}`, 'x'.repeat(60) + '.metal']) {
      const q = queueName(job, type, 'on-demand');
      const d = deadLetterQueueName(job, type, 'on-demand');
      expect(d.length).toBeLessThanOrEqual(80);
      expect(d).toMatch(/^[A-Za-z0-9_-]+-dlq$/);
      expect(q).not.toBe(queueName(job, type));
      const g = groupName(job, type, 'on-demand');
      expect(g.length).toBeLessThanOrEqual(128);
      expect(g).toMatch(/^[A-Za-z0-9().\-/_]+$/);
      expect(g).not.toBe(groupName(job, type));
    }
  });
});
