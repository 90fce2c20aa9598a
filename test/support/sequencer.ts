/**
 * The order the suite's files start in: longest first. With 2 workers and ~150 files, a long file
 * that starts late is the run's tail (a clean clone, as CI runs it, has no vitest cache of earlier
 * durations and ran them by file size: a 52 s file started in the last minute). The files below
 * are those that took 3 s or more in a full run on the 2-core CI machine (seconds, rounded),
 * longest first; every other file follows in vitest's own order. A new slow file is run in vitest's
 * order until it is added here; a name that no longer exists is ignored.
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { relative } from 'node:path';

const KNOWN_SECONDS = new Map<string, number>([
  ["test/network-faults.test.ts", 114],
  ["test/contention.test.ts", 112],
  ["test/faults-aws.test.ts", 75],
  ["test/bad-input.test.ts", 90],
  ["test/launch-failures.test.ts", 82],
  ["test/faults-local.test.ts", 80],
  ["test/instance-reboot.test.ts", 70],
  ["packages/common/test/aws/contract.test.ts", 63],
  ["test/aws-cost.test.ts", 59],
  ["test/faults-aws-poison.test.ts", 53],
  ["test/aws-e2e.test.ts", 52],
  ["test/submit-interrupt.test.ts", 47],
  ["test/faults-install.test.ts", 42],
  ["test/faults-aws-dup.test.ts", 37],
  ["test/fleet-idle.test.ts", 37],
  ["test/aws-submit.test.ts", 33],
  ["test/spot-aws.test.ts", 30],
  ["test/results-aws.test.ts", 29],
  ["test/boot-failure.test.ts", 28],
  ["test/spot-on-demand-aws.test.ts", 28],
  ["test/strand-aws.test.ts", 28],
  ["test/licence-lifecycle.test.ts", 25],
  ["packages/agent/test/agent-loop.test.ts", 21],
  ["test/local-lifecycle.test.ts", 19],
  ["test/strand-local.test.ts", 19],
  ["packages/common/test/aws/status-store.test.ts", 19],
  ["test/userdata.test.ts", 18],
  ["test/live-aws.test.ts", 16],
  ["test/slots-aws.test.ts", 16],
  ["packages/common/test/jobfile.test.ts", 16],
  ["test/agent-protection.test.ts", 15],
  ["test/doctor.test.ts", 14],
  ["packages/common/test/aws/task-queue.test.ts", 14],
  ["test/instance-runtime.test.ts", 11],
  ["test/live-local.test.ts", 11],
  ["packages/cli/test/infra.test.ts", 10],
  ["test/real-ec2.test.ts", 9],
  ["packages/common/test/aws/artifact-store.test.ts", 8],
  ["packages/common/test/local/contract.test.ts", 7],
  ["test/local-worker-loss.test.ts", 6],
  ["test/report-browser.test.ts", 6],
  ["packages/agent/test/agent-slots.test.ts", 6],
  ["test/cli-help.test.ts", 5],
  ["test/harness-skips.test.ts", 5],
  ["test/report-skips.test.ts", 5],
  ["test/results-local.test.ts", 5],
  ["test/security.test.ts", 5],
  ["test/spot-local.test.ts", 5],
  ["test/status-big.test.ts", 5],
  ["packages/cli/test/ami.test.ts", 5],
  ["packages/common/test/local/status-store.test.ts", 5],
  ["test/fast-start.test.ts", 4],
  ["test/progress.test.ts", 4],
  ["test/slots-local.test.ts", 4],
  ["packages/common/test/transitions.test.ts", 4],
  ["packages/strict-aws/test/contention.test.ts", 4],
  ["packages/strict-aws/test/proxy.test.ts", 4],
  ["packages/common/test/aws/status-store-pages.test.ts", 4],
  ["packages/agent/test/agent-signals.test.ts", 3],
  ["packages/agent/test/ec2-tags.test.ts", 3],
  ["packages/cli/test/spot-alternatives.test.ts", 3],
]);

export class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const base = await super.sort(files);
    const secondsOf = (f: TestSpecification) => KNOWN_SECONDS.get(relative(this.ctx.config.root, f.moduleId).split('\\').join('/'));
    const known = base.filter((f) => secondsOf(f) !== undefined).sort((a, b) => secondsOf(b)! - secondsOf(a)!);
    return [...known, ...base.filter((f) => secondsOf(f) === undefined)];
  }
}
