/**
 * The Spot saving against on-demand (spend.ts spotSaving), the root EBS volumes in the spend and
 * the estimates, and the estimate of failed tasks run again (cap.ts retriedCost, which gq retry
 * adds to the spend before the cap), exact to the cent.
 */
import { describe, expect, it } from 'vitest';
import { capState, cents, emptyCounts, jobCost, retriedCost, spotSaving, type InstanceRecord } from '../src/index.js';

const T0 = Date.parse('2026-01-01T12:00:00Z');
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();

function inst(id: string, type: string, o: Partial<InstanceRecord>): InstanceRecord {
  return { job: 'j', instance: id, instanceType: type, state: 'STOPPED', heartbeatAt: iso(0), launchedAt: iso(0), ...o };
}

describe('Spot saving', () => {
  it('per type and in total: the billed seconds at the on-demand price less at the Spot price', () => {
    const onDemand = (t: string) => ({ 'c5.large': 0.085, 'm5.xlarge': 0.192 })[t];
    const recs = [
      inst('i-1', 'c5.large', { lifecycle: 'spot', pricePerHour: 0.035, endedAt: iso(3600) }), // 1 h: 0.085 - 0.035
      inst('i-2', 'c5.large', { lifecycle: 'spot', pricePerHour: 0.035, endedAt: iso(10) }), // the 60 s minimum
      inst('i-3', 'c5.large', { lifecycle: 'on-demand', pricePerHour: 0.085, endedAt: iso(3600) }), // not Spot: nothing saved
      inst('i-4', 'm5.xlarge', { lifecycle: 'spot', pricePerHour: 0.072, endedAt: iso(1800) }), // half an hour
    ];
    const s = spotSaving(recs, T0 + 7200_000, onDemand)!;
    expect(cents(s.perType['c5.large']!)).toBe(cents(0.05 + (60 * 0.05) / 3600));
    expect(cents(s.perType['m5.xlarge']!)).toBe(0.06);
    expect(cents(s.usd)).toBe(cents(0.05 + (60 * 0.05) / 3600 + 0.06));
  });

  it('undefined without a Spot instance whose prices are both known', () => {
    expect(spotSaving([inst('i-1', 'c5.large', { lifecycle: 'on-demand', pricePerHour: 0.085 })], T0, () => 0.085)).toBeUndefined();
    expect(spotSaving([inst('i-1', 'c5.large', { lifecycle: 'spot', pricePerHour: 0.03 })], T0, () => undefined)).toBeUndefined();
  });
});

describe('retriedCost (gq retry against the cap)', () => {
  it('per type: the tasks × the mean run time × the price ÷ slots; a type without a run time counts 0', () => {
    const recs = [inst('i-1', 'c5.large', { pricePerHour: 0.36, tasksRun: 4, taskSeconds: 400 })]; // mean 100 s
    const tasks = [{ instanceType: 'c5.large' }, { instanceType: 'c5.large' }, { instanceType: 'm5.xlarge' }];
    expect(cents(retriedCost(tasks, recs))).toBe(0.02); // 200 s at $0.36/h
    expect(retriedCost(tasks, recs, { slots: () => 2 })).toBeCloseTo(0.01, 10);
    expect(retriedCost([], recs)).toBe(0);
  });
});

describe('root EBS volumes in the cost', () => {
  const GB_HOUR = 0.08 / 730; // gp3, per GB-month of 730 hours
  it('spend: each instance with its recorded volume, per second with the 60-second minimum', () => {
    const recs = [
      inst('i-1', 'c5.large', { pricePerHour: 0.36, volumeGb: 100, endedAt: iso(3600) }),
      inst('i-2', 'c5.large', { pricePerHour: 0.36, volumeGb: 100, endedAt: iso(5) }), // a minute billed
      inst('i-3', 'c5.large', { pricePerHour: 0.36, endedAt: iso(3600) }), // no size recorded: the instance alone
    ];
    const c = jobCost({ instances: recs, now: T0 + 7200_000 });
    expect(cents(c.spend)).toBe(cents(0.36 + 100 * GB_HOUR + (60 * (0.36 + 100 * GB_HOUR)) / 3600 + 0.36));
    expect(cents(c.spend)).toBe(0.74); // $0.7315 without the volumes
  });

  it('estimate to finish, committed and the cap count the volume beside the instance', () => {
    const recs = [inst('i-1', 'c5.large', { state: 'BUSY', pricePerHour: 0.36, volumeGb: 1000, tasksRun: 1, taskSeconds: 3600 })];
    const rate = 0.36 + 1000 * GB_HOUR; // $1.4559/h
    const c = jobCost({ instances: recs, now: T0 + 1000, work: () => ({ queued: 2, running: [0] }) });
    expect(cents(c.toFinish!.usd)).toBe(cents(3 * rate));
    expect(cents(c.committed)).toBe(cents(rate));
    const cap = capState({ maxCost: 100, instanceTypes: { 'c5.large': 3 }, counts: { ...emptyCounts(), queued: 2 } }, recs, T0 + 1000)!;
    expect(cents(cap.next)).toBe(cents(rate));
    expect(cents(retriedCost([{ instanceType: 'c5.large' }], recs))).toBe(cents(rate));
  });
});
