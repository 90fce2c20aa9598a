import { describe, expect, it } from 'vitest';
import {
  addRanges,
  billedSeconds,
  estimateRange,
  capState,
  cents,
  formatUsd,
  instanceCharge,
  jobCost,
  mergePriceTables,
  onDemandPrice,
  shippedPriceTable,
  taskCostShare,
  volumeCharge,
  type InstanceRecord,
  type TypeWork,
} from '../src/index.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

function inst(over: Partial<InstanceRecord> & { instance: string }): InstanceRecord {
  return { job: 'j', instanceType: 'c5.large', state: 'STOPPED', heartbeatAt: at(0), lifecycle: 'on-demand', ...over };
}
const none: TypeWork = { queued: 0, running: [] };

describe('billing', () => {
  it('bills whole seconds with a 60-second minimum per run', () => {
    expect(billedSeconds(T0, T0 + 10_000)).toBe(60);
    expect(billedSeconds(T0, T0 + 60_000)).toBe(60);
    expect(billedSeconds(T0, T0 + 61_200)).toBe(62);
    expect(billedSeconds(T0, T0 - 5)).toBe(60);
  });
  it('charges per second of the hourly price, and gp3 volumes per GB-month of 730 hours', () => {
    expect(cents(instanceCharge(3600, 0.085))).toBe(0.09);
    expect(instanceCharge(7200, 1.5)).toBe(3);
    // 100 GB for 730 hours at $0.08/GB-month = $8.00; 30 s is billed as 60.
    expect(cents(volumeCharge(100, 730 * 3600))).toBe(8);
    expect(volumeCharge(100, 30)).toBe(volumeCharge(100, 60));
    expect(volumeCharge(0, 3600)).toBe(0);
  });
  it('formats money to the cent, and says a tiny spend is not nothing', () => {
    expect(formatUsd(12.345)).toBe('$12.35');
    expect(formatUsd(0.0042)).toBe('$0.004');
    expect(formatUsd(0)).toBe('$0.00');
  });
});

describe('a job\'s cost', () => {
  // Two c5.large at $1.00/h (a round price to check by hand) and one m5.large at $0.50/h.
  const instances = [
    inst({ instance: 'i-a', launchedAt: at(0), endedAt: at(3600), busySeconds: 2700, idleSeconds: 600, tasksRun: 3, taskSeconds: 2700, pricePerHour: 1 }),
    inst({ instance: 'i-b', launchedAt: at(0), state: 'BUSY', busySeconds: 1800, pricePerHour: 1 }),
    inst({ instance: 'i-c', instanceType: 'm5.large', launchedAt: at(100), endedAt: at(130), busySeconds: 20, tasksRun: 1, taskSeconds: 20, pricePerHour: 0.5 }),
  ];
  // c5.large: two tasks queued, one running for 600 s; m5.large: done.
  const work = (t: string): TypeWork => (t === 'c5.large' ? { queued: 2, running: [600] } : none);
  const now = T0 + 3600_000;
  const cost = jobCost({ instances, work, now });

  it('adds up the spend of every instance, per second, the short one at its minute', () => {
    const c5 = cost.perType.find((t) => t.instanceType === 'c5.large')!;
    const m5 = cost.perType.find((t) => t.instanceType === 'm5.large')!;
    expect(c5.spend).toBe(2); // two hours at $1
    expect(cents(m5.spend)).toBe(0.01); // 60 s (the minimum, ran 30 s) at $0.50/h = $0.00833
    expect(cents(cost.spend)).toBe(2.01);
    expect(c5.paidSeconds).toBe(7200);
    expect(m5.paidSeconds).toBe(60);
    expect(c5.running).toBe(1);
  });
  it('gives the busy fraction of the paid time', () => {
    const c5 = cost.perType.find((t) => t.instanceType === 'c5.large')!;
    expect(c5.busyFraction).toBeCloseTo(4500 / 7200, 10);
    expect(cost.busyFraction).toBeCloseTo(4520 / 7260, 10);
  });
  it('estimates the cost to finish from the mean run time of finished attempts and the tasks left', () => {
    const c5 = cost.perType.find((t) => t.instanceType === 'c5.large')!;
    expect(c5.meanTaskSeconds).toBe(900);
    expect(c5.tasksLeft).toBe(3);
    // Two queued × 900 s + the running one's 300 s left = 2100 s of work on one running instance.
    expect(c5.toFinish).toEqual({ usd: 2100 / 3600, seconds: 2100 });
    expect(cents(c5.committed)).toBe(cents(300 / 3600)); // the running task to its expected end
    expect(cents(cost.toFinish!.usd)).toBe(0.58);
  });
  it('divides the work over the slots', () => {
    const c = jobCost({ instances, work, now, slots: (t) => (t === 'c5.large' ? 3 : 1) });
    const c5 = c.perType.find((t) => t.instanceType === 'c5.large')!;
    expect(c5.toFinish).toEqual({ usd: 700 / 3600, seconds: 700 });
    expect(c5.busyFraction).toBeCloseTo(4500 / 21600, 10);
  });
  it('counts an instance without a price as unknown, never as a made-up number', () => {
    const c = jobCost({ instances: [inst({ instance: 'i-x', instanceType: 'x9.huge', launchedAt: at(0), endedAt: at(600), tasksRun: 1, taskSeconds: 60 })], work: () => ({ queued: 1, running: [] }), now });
    expect(c.spend).toBe(0);
    expect(c.priceUnknown).toBe(1);
    expect(c.toFinish).toBeUndefined();
  });
  it('takes the table price when the record has none, and 0 for a local worker', () => {
    const c = jobCost({
      instances: [inst({ instance: 'i-y', launchedAt: at(0), endedAt: at(1800) }), inst({ instance: 'local-1', instanceType: 'local', lifecycle: 'local', launchedAt: at(0), endedAt: at(1800) })],
      now,
      priceOf: (t) => (t === 'c5.large' ? 0.085 : undefined),
    });
    expect(c.spend).toBeCloseTo(0.0425, 10);
    expect(c.priceUnknown).toBe(0);
  });
  it('has no estimate before any task finished, and nothing to spend once none is left', () => {
    const queued = () => ({ queued: 4, running: [] });
    expect(jobCost({ instances: [], types: ['c5.large'], work: queued, now, priceOf: () => 1 }).toFinish).toBeUndefined();
    expect(jobCost({ instances: [], types: ['c5.large'], now, priceOf: () => 1 }).toFinish).toEqual({ usd: 0, seconds: 0 });
    // A dry run: an assumed run time of 30 minutes, four tasks, two slots: one instance-hour.
    expect(jobCost({ instances: [], types: ['c5.large'], work: queued, now, priceOf: () => 1, slots: () => 2, assumedTaskSeconds: () => 1800 }).toFinish).toEqual({ usd: 1, seconds: 3600 });
  });
  it('shares an instance\'s price among its slots', () => {
    expect(taskCostShare(1800, 1)).toBe(0.5);
    expect(cents(taskCostShare(1800, 1, 3))).toBe(0.17);
  });
});

describe('the shipped price table', () => {
  const table = shippedPriceTable();
  it('says where its prices come from and when', () => {
    expect(table.source).toMatch(/AWS public on-demand price list/);
    expect(table.asOf).toMatch(/^\d{4}-\d{2}/);
  });
  it('knows the common families in the main regions', () => {
    for (const region of ['us-east-1', 'us-west-2', 'eu-west-1', 'eu-central-1']) {
      for (const fam of ['t3', 'm5', 'm6i', 'm7i', 'c5', 'c6i', 'c7i', 'r5', 'r6i', 'r7i']) {
        for (const size of ['large', 'xlarge', '2xlarge']) expect(onDemandPrice(table, region, `${fam}.${size}`), `${region} ${fam}.${size}`).toBeGreaterThan(0);
      }
    }
    expect(onDemandPrice(table, 'us-east-1', 'c5.large')).toBe(0.085);
    expect(onDemandPrice(table, 'us-east-1', 'm5.8xlarge')).toBe(1.536);
  });
  it('has no price for a type or region it does not list', () => {
    expect(onDemandPrice(table, 'us-east-1', 'x9.huge')).toBeUndefined();
    expect(onDemandPrice(table, 'mars-north-1', 'c5.large')).toBeUndefined();
  });
  it('lets a fresher table replace a region', () => {
    const m = mergePriceTables(table, { source: 'api', asOf: '2026-12-01', regions: { 'us-east-1': { 'c5.large': 0.09 } } });
    expect(onDemandPrice(m, 'us-east-1', 'c5.large')).toBe(0.09);
    expect(onDemandPrice(m, 'us-east-1', 'm5.large')).toBeUndefined();
    expect(onDemandPrice(m, 'eu-west-1', 'm5.large')).toBe(0.107);
  });
});

describe('a cost range before the job runs', () => {
  it('pays the task time at least, and whole waves with boot and idle at most', () => {
    // 10 tasks of 30 minutes on 4 instances of 2 slots at $1/h: 5 instance-hours of work;
    // 2 waves (8 slots) = 1 h each instance, + 300 s boot + 120 s idle.
    const r = estimateRange({ tasks: 10, taskSeconds: 1800, instances: 4, slots: 2, pricePerHour: 1, idleSeconds: 120 })!;
    expect(r.low).toBe(2.5);
    expect(cents(r.high)).toBe(cents(4 * (3600 + 420) / 3600));
    expect(r.seconds).toBe(3600);
  });
  it('bills a minute per instance for short tasks, and knows no range without a price', () => {
    expect(estimateRange({ tasks: 2, taskSeconds: 1, instances: 2, slots: 1, pricePerHour: 3.6, idleSeconds: 0 })!.low).toBe(0.12);
    expect(estimateRange({ tasks: 2, taskSeconds: 1, instances: 2, slots: 1, pricePerHour: undefined, idleSeconds: 0 })).toBeUndefined();
    expect(addRanges([{ low: 1, high: 2, seconds: 5 }, undefined])).toBeUndefined();
    expect(addRanges([{ low: 1, high: 2, seconds: 5 }, { low: 1, high: 3, seconds: 9 }])).toEqual({ low: 2, high: 5, seconds: 9 });
  });
});

describe('the cost cap', () => {
  const now = T0 + 600_000;
  const job = (maxCost: number | undefined, queued = 2) => ({ maxCost, instanceTypes: { 'c5.large': 4 }, counts: { queued, running: 1, succeeded: 1, failed: 0, cancelled: 0 } });
  // One instance at $3.60/h ($0.001 a second), 600 s so far, one 100-s attempt done, busy now.
  const busy = [inst({ instance: 'i-a', state: 'BUSY', launchedAt: at(0), pricePerHour: 3.6, tasksRun: 1, taskSeconds: 100 })];
  it('counts the spend, the busy slots to their expected end, and the next task', () => {
    const s = capState(job(1), busy, now)!;
    expect(s.spend).toBeCloseTo(0.6, 10);
    expect(s.committed).toBeCloseTo(0.1, 10);
    expect(s.next).toBeCloseTo(0.1, 10);
    expect(s.reached).toBe(false);
    expect(capState(job(0.8), busy, now)!.reached).toBe(true);
  });
  it('counts no next task when none is queued, and has no state without a cap', () => {
    expect(capState(job(0.75, 0), busy, now)!.reached).toBe(false);
    expect(capState(job(undefined), busy, now)).toBeUndefined();
  });
});
