import { describe, expect, it } from 'vitest';
import { jobSlots, slotsFor, slotsOf } from '../src/job/slots.js';
import { busyDetail } from '../src/job/model.js';
import { desiredForBacklog } from '../src/aws/scaling.js';
import { loadConfig } from '../src/config/load.js';

describe('slots', () => {
  it('one number applies to every type', () => {
    expect(slotsFor(3, 'c5.large')).toBe(3);
    expect(slotsFor(undefined, 'c5.large')).toBe(1);
  });
  it('per type, then family, then "*", then 1', () => {
    const s = { 'c5.large': 2, c5: 4, '*': 8 };
    expect(slotsFor(s, 'c5.large')).toBe(2);
    expect(slotsFor(s, 'c5.xlarge')).toBe(4);
    expect(slotsFor(s, 'm5.large')).toBe(8);
    expect(slotsFor({ c5: 4 }, 'm5.large')).toBe(1);
  });
  it('the job records them per type, nothing when all are 1', () => {
    expect(jobSlots(1, ['a.x', 'b.x'])).toBeUndefined();
    expect(jobSlots({ a: 3 }, ['a.x', 'b.x'])).toEqual({ 'a.x': 3, 'b.x': 1 });
    expect(slotsOf({ slots: { 'a.x': 3 } }, 'a.x')).toBe(3);
    expect(slotsOf({}, 'a.x')).toBe(1);
    expect(slotsOf({ slots: { 'a.x': 0 } }, 'a.x')).toBe(1);
  });
  it('a busy worker\'s detail names its task, or all of its tasks', () => {
    expect(busyDetail(4)).toBe('task 4');
    expect(busyDetail([4])).toBe('task 4');
    expect(busyDetail([4, 7, 9])).toBe('tasks 4, 7, 9');
  });
  it('desired capacity is ceil(pending ÷ slots), capped by the maximum', () => {
    expect(desiredForBacklog({ pending: 10, slotsPerInstance: 3, max: 20 })).toBe(4);
    expect(desiredForBacklog({ pending: 9, slotsPerInstance: 3, max: 20 })).toBe(3);
    expect(desiredForBacklog({ pending: 100, slotsPerInstance: 3, max: 5 })).toBe(5);
    expect(desiredForBacklog({ pending: 1, slotsPerInstance: 3, max: 5, busy: 2 })).toBe(2);
  });
  it('the setting comes from a flag, the environment (a number or JSON) or the file, and is checked', () => {
    const env = { GQ_CONFIG: '/nonexistent/gq.json' };
    expect(loadConfig({}, env).slots).toBe(1);
    expect(loadConfig({ slots: 4 }, env).slots).toBe(4);
    expect(loadConfig({}, { ...env, GQ_SLOTS: '3' }).slots).toBe(3);
    expect(loadConfig({}, { ...env, GQ_SLOTS: '{"c5": 2}' }).slots).toEqual({ c5: 2 });
    expect(() => loadConfig({ slots: 0 }, env)).toThrow(/"slots".*a whole number from 1 to 64/);
    expect(() => loadConfig({}, { ...env, GQ_SLOTS: '{"c5": 0}' })).toThrow(/"slots"/);
  });
});
