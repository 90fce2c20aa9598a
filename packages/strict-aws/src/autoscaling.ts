/**
 * EC2 Auto Scaling (query protocol, `Action=<Operation>&Version=2011-01-01`). Pure:
 * `validateAutoScaling(params, ctx)`; `ctx.group(name)` gives the group's sizes for the requests
 * that change one size only (the proxy reads them from the upstream).
 */
import { intParam, tags, type Params } from './query.js';
import { defineRules, violation, type Violation } from './rules.js';

const API = 'https://docs.aws.amazon.com/autoscaling/ec2/APIReference';
const VE = { status: 400, code: 'ValidationError' } as const;

export const AUTOSCALING_RULES = defineRules('autoscaling', {
  groupName: { id: 'autoscaling.group-name', summary: 'a group name of 0 or more than 255 characters', doc: `${API}/API_CreateAutoScalingGroup.html`, ...VE },
  tooManyTags: { id: 'autoscaling.too-many-tags', summary: 'more than 50 tags on a group', doc: 'https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-tagging.html', ...VE },
  tagLength: { id: 'autoscaling.tag-length', summary: 'a tag key of 0 or over 128, or a value over 256 characters', doc: `${API}/API_Tag.html`, ...VE },
  tagAwsPrefix: { id: 'autoscaling.tag-aws-prefix', summary: 'a tag key starting with aws:', doc: 'https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-tagging.html', ...VE },
  desiredOutsideSizes: { id: 'autoscaling.desired-outside-sizes', summary: 'a desired capacity above MaxSize or below MinSize', doc: `${API}/API_SetDesiredCapacity.html`, ...VE },
  minAboveMax: { id: 'autoscaling.min-above-max', summary: 'MinSize above MaxSize', doc: `${API}/API_UpdateAutoScalingGroup.html`, ...VE },
});
const R = AUTOSCALING_RULES;

export interface GroupSizes {
  min: number;
  max: number;
  desired: number;
}

export interface AutoScalingContext {
  /** The group's current sizes, or undefined when it does not exist (or is not known). */
  group(name: string): GroupSizes | undefined;
}

/** Operations for which the proxy must look up the group first. */
export const NEEDS_GROUP = new Set(['SetDesiredCapacity', 'UpdateAutoScalingGroup']);

function checkTags(p: Params, prefix: string): Violation | undefined {
  const list = tags(p, prefix);
  if (list.length > 50) return violation(R.tooManyTags, `The number of tags exceeds the limit of 50 for the Auto Scaling group (${list.length} given).`);
  for (const [i, t] of list.entries()) {
    if (t.key.length < 1 || t.key.length > 128) {
      return violation(R.tagLength, `1 validation error detected: Value '${t.key}' at 'tags.${i + 1}.member.key' failed to satisfy constraint: Member must have length ${t.key.length < 1 ? 'greater than or equal to 1' : 'less than or equal to 128'}`);
    }
    if (t.value.length > 256) {
      return violation(R.tagLength, `1 validation error detected: Value at 'tags.${i + 1}.member.value' failed to satisfy constraint: Member must have length less than or equal to 256`);
    }
    if (/^aws:/i.test(t.key)) return violation(R.tagAwsPrefix, `Tag keys starting with 'aws:' are reserved for internal use: ${t.key}`);
  }
  return undefined;
}

function checkName(name: string | null): Violation | undefined {
  if (name === null) return undefined;
  if (name.length < 1 || name.length > 255) {
    return violation(R.groupName, `1 validation error detected: Value '${name}' at 'autoScalingGroupName' failed to satisfy constraint: Member must have length ${name.length < 1 ? 'greater than or equal to 1' : 'less than or equal to 255'}`);
  }
  return undefined;
}

function checkSizes(min: number | undefined, max: number | undefined, desired: number | undefined): Violation | undefined {
  if (min !== undefined && max !== undefined && min > max) return violation(R.minAboveMax, `Max bound, ${max}, must be greater than or equal to min bound, ${min}`);
  if (desired !== undefined && ((max !== undefined && desired > max) || (min !== undefined && desired < min))) {
    return violation(R.desiredOutsideSizes, `Desired capacity:${desired} must be between the specified min size:${min ?? 0} and max size:${max ?? desired}`);
  }
  return undefined;
}

/** The first documented refusal of an Auto Scaling request, or undefined. */
export function validateAutoScaling(p: Params, ctx: AutoScalingContext): Violation | undefined {
  const action = p.get('Action') ?? '';
  const name = p.get('AutoScalingGroupName');
  switch (action) {
    case 'CreateAutoScalingGroup':
      return checkName(name) ?? checkTags(p, 'Tags.member') ?? checkSizes(intParam(p, 'MinSize'), intParam(p, 'MaxSize'), intParam(p, 'DesiredCapacity'));
    case 'CreateOrUpdateTags':
      return checkTags(p, 'Tags.member');
    case 'UpdateAutoScalingGroup': {
      const g = name ? ctx.group(name) : undefined;
      const min = intParam(p, 'MinSize') ?? g?.min;
      const max = intParam(p, 'MaxSize') ?? g?.max;
      const desired = intParam(p, 'DesiredCapacity');
      return checkSizes(min, max, desired);
    }
    case 'SetDesiredCapacity': {
      const g = name ? ctx.group(name) : undefined;
      const desired = intParam(p, 'DesiredCapacity');
      if (!g || desired === undefined) return undefined;
      if (desired > g.max) return violation(R.desiredOutsideSizes, `New SetDesiredCapacity value ${desired} is above max value ${g.max} for the AutoScalingGroup.`);
      if (desired < g.min) return violation(R.desiredOutsideSizes, `New SetDesiredCapacity value ${desired} is below min value ${g.min} for the AutoScalingGroup.`);
      return undefined;
    }
    default:
      return undefined;
  }
}
