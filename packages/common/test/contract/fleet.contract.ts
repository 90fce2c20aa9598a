/**
 * Behaviour every Fleet must have, seen through the port only. Run by test/local/contract.test.ts
 * on worker processes (a stand-in agent that idles) and by test/aws/contract.test.ts on moto's
 * Auto Scaling (which launches instances at once and never runs their UserData). Each test uses
 * its own job; the fixture's groups hold at most `max` workers. Known differences (ports.ts):
 * the local fleet describes only types that have live workers, and never lowers capacity itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fleet, FleetGroup, FleetInstance } from '../../src/ports.js';
import type { JobRecord } from '../../src/job/model.js';
import { emptyCounts } from '../../src/job/states.js';
import { makeSpec } from './status.contract.js';
import { eventually, uniqueJob, type ContractOptions } from './util.js';

export interface FleetFixture {
  fleet: Fleet;
  /** An instance type the backend takes (an EC2 type on AWS). */
  instanceType: string;
  /** A second one, for a job with two groups. */
  otherType: string;
  /** The most workers of one group (the fixture's launch settings). */
  max: number;
  /** After the suite: `jobs` were removed; stop whatever the backend may leave behind. */
  cleanup(jobs: readonly string[]): Promise<void>;
}

const live = (i: FleetInstance): boolean => i.phase === 'starting' || i.phase === 'running';
const liveIds = (g: FleetGroup | undefined): string[] => (g?.instances.filter(live).map((i) => i.id) ?? []).sort();

export function fleetContract(name: string, make: () => Promise<FleetFixture>, opts: ContractOptions = {}): void {
  (opts.concurrent ? describe.concurrent : describe)(`Fleet contract: ${name}`, () => {
    let fx: FleetFixture;
    let fleet: Fleet;
    const jobs: string[] = [];

    beforeAll(async () => {
      fx = await make();
      fleet = fx.fleet;
    });
    afterAll(async () => {
      for (const j of jobs) await fleet.remove(j).catch(() => {});
      await fx?.cleanup(jobs);
    });

    function job(tag: string): JobRecord {
      const n = uniqueJob(tag);
      jobs.push(n);
      return { ...makeSpec(n, 4), counts: emptyCounts(), cancelRequested: false, updatedAt: new Date().toISOString() };
    }

    const groupOf = async (j: string, type = fx.instanceType) => (await fleet.describe(j)).find((g) => g.instanceType === type);

    it('ensureCapacity starts workers, clamped to the maximum; describe shows them live, healthy and unprotected', async () => {
      const j = job('start');
      expect(await fleet.describe(j.name)).toEqual([]);
      const g = await fleet.ensureCapacity(j, fx.instanceType, fx.max + 3);
      expect(g).toMatchObject({ instanceType: fx.instanceType, desired: fx.max, max: fx.max });
      expect(g.instances.filter(live)).toHaveLength(fx.max);
      const d = await groupOf(j.name);
      expect(liveIds(d)).toEqual(liveIds(g));
      for (const i of d!.instances) expect(i).toMatchObject({ protected: false, healthy: true });
      expect(d!.launchProblem).toBeUndefined();
      // Asking again for as many starts nobody new.
      expect(liveIds(await fleet.ensureCapacity(j, fx.instanceType, fx.max))).toEqual(liveIds(g));
    });

    it('ensureCapacity of 0 starts nobody', async () => {
      const j = job('zero');
      const g = await fleet.ensureCapacity(j, fx.instanceType, 0);
      expect(g.instances.filter(live)).toEqual([]);
      expect(liveIds(await groupOf(j.name))).toEqual([]);
    });

    it('protect is shown by describe, on and off', async () => {
      const j = job('protect');
      const [a] = (await fleet.ensureCapacity(j, fx.instanceType, 1)).instances;
      await fleet.protect(j.name, fx.instanceType, a!.id, true);
      expect((await groupOf(j.name))!.instances.find((i) => i.id === a!.id)!.protected).toBe(true);
      await fleet.protect(j.name, fx.instanceType, a!.id, false);
      expect((await groupOf(j.name))!.instances.find((i) => i.id === a!.id)!.protected).toBe(false);
    });

    it('terminateSelf: the worker leaves (busy and protected included) and is not replaced', async () => {
      const j = job('self');
      const g = await fleet.ensureCapacity(j, fx.instanceType, 2);
      const [victim, stays] = liveIds(g);
      await fleet.protect(j.name, fx.instanceType, victim!, true);
      await fleet.terminateSelf(j.name, fx.instanceType, victim!);
      const after = await groupOf(j.name);
      expect(liveIds(after)).toEqual([stays]);
      expect(after!.desired).toBe(1);
    });

    it('describe lists the job’s own groups by type; stop leaves no live worker; remove leaves nothing, twice', async () => {
      const j = job('stop');
      const other = job('other');
      await fleet.ensureCapacity(j, fx.instanceType, 1);
      await fleet.ensureCapacity(j, fx.otherType, 1);
      await fleet.ensureCapacity(other, fx.instanceType, 1);
      const groups = await fleet.describe(j.name);
      expect(groups.map((g) => g.instanceType)).toEqual([fx.instanceType, fx.otherType].sort());
      expect(groups.map((g) => g.instances.filter(live).length)).toEqual([1, 1]);

      await fleet.stop(j.name);
      await eventually(async () => {
        for (const g of await fleet.describe(j.name)) {
          expect(g.desired).toBe(0);
          expect(liveIds(g)).toEqual([]);
        }
      }, 10_000);
      expect(liveIds(await groupOf(other.name))).toHaveLength(1); // another job's workers stay

      await fleet.remove(j.name);
      expect(await fleet.describe(j.name)).toEqual([]);
      await fleet.remove(j.name);
      await fleet.remove(uniqueJob('never'));
    });
  });
}
