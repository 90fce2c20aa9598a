/**
 * Why EC2 Auto Scaling does not start a group's instances (pure: no I/O).
 *
 * A refused launch is not an error of any call gq makes: CreateAutoScalingGroup and
 * SetDesiredCapacity succeed, and the group then stays at 0 instances. What AWS says is in the
 * group's scaling activities (DescribeScalingActivities): "If an attempt to launch instances
 * failed, the StatusCode value is Failed or Cancelled and the StatusMessage element in the
 * response indicates the cause of the failure"
 * (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html).
 * An activity carries no error code of EC2's: StatusCode is only Successful / Failed /
 * Cancelled / InProgress..., and EC2's reason (its error code's message) is free text in
 * StatusMessage. So, unlike everywhere else in gq, the cause is recognised from that text: it is
 * the only thing AWS gives. The patterns below follow the messages that AWS documents in
 * "Troubleshoot Amazon EC2 Auto Scaling: EC2 instance launch failures"
 * (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ts-as-instancelaunchfailure.html) and the
 * EC2 error codes page (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html),
 * as users report them verbatim (collected, with where each was quoted, in
 * packages/common/test/fixtures/launch-messages.ts, which the unit tests and the moto tests use).
 * Anything not recognised is reported with AWS's own words and the generic advice.
 */
import type { LaunchProblem } from '../ports.js';

export type { LaunchProblem };

/** The causes gq tells apart, each with what the user should do. */
export const LAUNCH_CAUSES = [
  'marketplace-terms',
  'vcpu-quota',
  'spot-quota',
  'insufficient-capacity',
  'type-not-offered',
  'architecture-mismatch',
  'ebs-kms-key',
  'instance-profile',
  'other',
] as const;
export type LaunchCause = (typeof LAUNCH_CAUSES)[number];

export interface LaunchCauseInfo {
  cause: LaunchCause;
  /** Expected to clear by itself soon (gq waits before it counts such failures). */
  transient: boolean;
  /** What to do about it, one or two sentences. */
  advice: string;
}

interface Rule {
  cause: LaunchCause;
  /** Matches the activity's StatusMessage (or Description). */
  test: RegExp;
  transient?: boolean;
  advice: (ctx: AdviceContext) => string;
}

export interface AdviceContext {
  instanceType?: string;
  /** The marketplace URL or other link AWS quoted, when there is one. */
  url?: string;
}

const type = (c: AdviceContext) => c.instanceType ?? 'this instance type';

/** First match wins; the order puts the specific before the general. */
const RULES: readonly Rule[] = [
  {
    // EC2 OptInRequired: "In order to use this AWS Marketplace product you need to accept terms
    // and subscribe. To do so please visit https://aws.amazon.com/marketplace/pp?sku=..."
    cause: 'marketplace-terms',
    test: /accept terms and subscribe|OptInRequired|marketplace.*subscri/i,
    advice: (c) =>
      `The AMI is an AWS Marketplace product whose terms this account has not accepted. Open ${c.url ?? 'its AWS Marketplace page'} ` +
      'signed in to this account, choose "Continue to Subscribe" and accept the terms (once per account), then run gq status again: ' +
      'Auto Scaling retries the launch by itself.',
  },
  {
    // EC2 VcpuLimitExceeded: "You have requested more vCPU capacity than your current vCPU limit of
    // 32 allows for the instance bucket that the specified instance type belongs to. Please visit
    // http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit."
    // Older accounts, InstanceLimitExceeded: "You have requested more instances (4) than your
    // current instance limit of 2 allows for the specified instance type."
    cause: 'vcpu-quota',
    test: /VcpuLimitExceeded|vCPU limit|InstanceLimitExceeded|than your current instance limit/i,
    advice: (c) =>
      `The account's On-Demand vCPU quota for the family of ${type(c)} is used up. Ask for more in the Service Quotas console ` +
      '(EC2, "Running On-Demand ... instances", counted in vCPUs), or lower --max-instances, or use a smaller type.',
  },
  {
    // EC2 MaxSpotInstanceCountExceeded: "Max spot instance count exceeded"
    cause: 'spot-quota',
    test: /MaxSpotInstanceCountExceeded|max spot instance count exceeded/i,
    advice: (c) =>
      `The account's Spot quota for the family of ${type(c)} is used up. Ask for more in the Service Quotas console ` +
      '(EC2, "All ... Spot Instance Requests", counted in vCPUs), lower --max-instances, or submit without --spot.',
  },
  {
    // EC2 InsufficientInstanceCapacity: "We currently do not have sufficient t3.micro capacity in
    // the Availability Zone you requested (us-east-1a). Our system will be working on provisioning
    // additional capacity. ..." (Spot: "There is no Spot capacity available that matches your
    // request.")
    cause: 'insufficient-capacity',
    test: /InsufficientInstanceCapacity|do not have sufficient .* capacity|insufficient capacity|no Spot capacity available/i,
    advice: (c) =>
      `AWS has no spare ${type(c)} capacity in the group's Availability Zones just now; Auto Scaling keeps trying. ` +
      'Wait, or use another instance type (or more subnets in other zones: gq setup --vpc-id), or On-Demand instead of Spot.',
  },
  {
    // EC2 Unsupported: "Your requested instance type (t2.micro) is not supported in your requested
    // Availability Zone (sa-east-1b). Please retry your request by not specifying an Availability
    // Zone or choosing sa-east-1a, sa-east-1c." and "The requested configuration is currently not
    // supported. Please check the documentation for supported configurations."
    cause: 'type-not-offered',
    test: /instance type .*is not supported in your requested Availability Zone|requested configuration is currently not supported|\bUnsupported\b/i,
    advice: (c) =>
      `${type(c)} is not offered in one of the group's Availability Zones (or in this region). Use a type offered there ` +
      `(aws ec2 describe-instance-type-offerings --location-type availability-zone --filters Name=instance-type,Values=${c.instanceType ?? 'TYPE'}), ` +
      'or run gq setup with a VPC whose subnets are in zones that offer it.',
  },
  {
    // EC2 InvalidParameterValue: "The architecture 'arm64' of the specified instance type does not
    // match the architecture 'x86_64' of the specified AMI." and the older "The requested instance
    // type's architecture (x86_64) does not match the architecture in the manifest for ami-... (arm64)."
    cause: 'architecture-mismatch',
    test: /architecture.*does not match.*architecture/i,
    advice: (c) =>
      `The AMI is built for another CPU architecture than ${type(c)}. Give an AMI of the type's architecture ` +
      '(the ami setting per instance type, e.g. {"m7g.large": "ami-..."}), or use an instance type of the AMI\'s architecture.',
  },
  {
    // "Instance became unhealthy while waiting for instance to be in InService state. Termination
    // Reason: Client.InternalError: Client error on launch", and the EC2 console's "One or more of
    // the attached Amazon EBS volumes are encrypted with an inaccessible AWS KMS key"; the AWS
    // page's cause: a customer managed key for EBS encryption that the Auto Scaling
    // service-linked role may not use (or a disabled key). KMS key states: "KMS key ... is not in
    // valid state" / "is pending deletion" / "is disabled".
    cause: 'ebs-kms-key',
    test: /Client\.InternalError|Client error on launch|inaccessible AWS KMS key|KMS key|kms.*(not in valid state|disabled|pending deletion|AccessDenied)/i,
    advice: () =>
      'The root volume is encrypted with a KMS key that Auto Scaling may not use: the account\'s default EBS key is a customer managed key. ' +
      'Let the service-linked role AWSServiceRoleForAutoScaling use it (key policy: kms:Encrypt, Decrypt, ReEncrypt*, GenerateDataKey*, ' +
      'DescribeKey and CreateGrant with kms:GrantIsForAWSResource; see "Required AWS KMS key policy for use with encrypted volumes"), ' +
      'or make sure the key is enabled, or set the default EBS key back to aws/ebs (aws ec2 reset-ebs-default-kms-key-id).',
  },
  {
    // "Value (gq-role) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance
    // Profile name" / "Invalid IamInstanceProfile": right after the profile was created, EC2
    // does not see it yet (IAM is eventually consistent); it clears within a minute or so.
    cause: 'instance-profile',
    test: /iamInstanceProfile|IAM Instance Profile/i,
    transient: true,
    advice: () =>
      'EC2 does not see the instance profile yet: IAM changes take a little while to reach EC2 after the role is created. ' +
      'This usually clears within a minute; if it persists, check that the gq stack (gq setup) still has its instance profile.',
  },
];

/** The URL AWS quoted in a message (Marketplace subscription page, quota request form). */
function urlIn(text: string): string | undefined {
  return /https?:\/\/[^\s)]+[^\s).,]/.exec(text)?.[0];
}

/** What a failed launch activity's message means and what to do about it. */
export function classifyLaunchFailure(message: string, ctx: AdviceContext = {}): LaunchCauseInfo {
  const c = { ...ctx, url: ctx.url ?? urlIn(message) };
  for (const r of RULES) {
    if (r.test.test(message)) return { cause: r.cause, transient: r.transient ?? false, advice: r.advice(c) };
  }
  return {
    cause: 'other',
    transient: false,
    advice:
      'Auto Scaling could not launch an instance for the reason AWS gives above. Fix it (see "When instances do not start" in the README, ' +
      `and the group's Activity tab in the EC2 console), then run gq status again.`,
  };
}

/** A scaling activity as gq reads it (the Auto Scaling API's Activity, trimmed). */
export interface ScalingActivity {
  /** Epoch ms. */
  startTime: number;
  /** Successful | Failed | Cancelled | InProgress | PendingSpotBidPlacement | ... */
  statusCode: string;
  statusMessage?: string;
  description?: string;
}

/** A launch (not a termination or a capacity change): "Launching a new EC2 instance..." or a Spot request. */
const LAUNCH = /^(Launching a new EC2 instance|Placing Spot instance request|Launching EC2 instance)/i;
const FAILED = new Set(['Failed', 'Cancelled']);

/** " Launching EC2 instance failed." that Auto Scaling appends to EC2's message. */
function trimReason(message: string): string {
  return message.replace(/\s*(Launching EC2 instance failed|Placing Spot instance request failed)\.?\s*$/i, '').trim();
}

/**
 * The launch problem of a group from its activities (any order): the failed launches after its
 * last successful launch, described by the newest of them. Undefined when the last launch
 * succeeded or nothing failed.
 */
export function launchProblemOf(activities: readonly ScalingActivity[], ctx: AdviceContext = {}): (LaunchProblem & { cause: LaunchCause }) | undefined {
  const launches = activities
    .filter((a) => LAUNCH.test(a.description ?? '') || (FAILED.has(a.statusCode) && !/^Terminating/i.test(a.description ?? '')))
    .sort((a, b) => b.startTime - a.startTime);
  const failed: ScalingActivity[] = [];
  for (const a of launches) {
    if (a.statusCode === 'Successful') break;
    if (FAILED.has(a.statusCode)) failed.push(a);
  }
  const newest = failed[0];
  if (!newest) return undefined;
  const raw = newest.statusMessage || newest.description?.replace(/^.*?Status Reason:\s*/i, '') || 'launch failed (AWS gave no reason)';
  const reason = trimReason(raw) || raw;
  const info = classifyLaunchFailure(raw, ctx);
  return {
    cause: info.cause,
    reason,
    advice: info.advice,
    failedLaunches: failed.length,
    since: new Date(failed[failed.length - 1]!.startTime).toISOString(),
    transient: info.transient,
  };
}

/** A transient problem counts only once it has lasted this long (IAM propagation takes seconds to minutes). */
export const TRANSIENT_PERSIST_MS = 10 * 60_000;

/**
 * The failed launches that count toward giving up (`gq submit --wait`): all of them, except for
 * a transient cause that has not yet lasted TRANSIENT_PERSIST_MS.
 */
export function countedFailures(p: LaunchProblem | undefined, now = Date.now()): number {
  if (!p) return 0;
  if (p.transient && now - Date.parse(p.since) < TRANSIENT_PERSIST_MS) return 0;
  return p.failedLaunches;
}
