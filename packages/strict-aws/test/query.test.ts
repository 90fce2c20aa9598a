/** Auto Scaling and EC2 rules (query protocol): fire on a request that breaks them, not on a valid one. */
import { describe, expect, it } from 'vitest';
import { AUTOSCALING_RULES as A, validateAutoScaling } from '../src/autoscaling.js';
import { EC2_RULES as E, validateEc2 } from '../src/ec2.js';

const form = (o: Record<string, string | number>) => new URLSearchParams(Object.entries(o).map(([k, v]) => [k, String(v)]));
const asgTags = (list: Array<[string, string]>) =>
  Object.fromEntries(list.flatMap(([k, v], i) => [[`Tags.member.${i + 1}.Key`, k], [`Tags.member.${i + 1}.Value`, v], [`Tags.member.${i + 1}.PropagateAtLaunch`, 'true']]));
const create = (o: Record<string, string | number> = {}) =>
  form({ Action: 'CreateAutoScalingGroup', Version: '2011-01-01', AutoScalingGroupName: 'gq-a-c5.large', MinSize: 0, MaxSize: 2, DesiredCapacity: 1, ...o });
const noGroup = { group: () => undefined };
const group = { group: () => ({ min: 0, max: 2, desired: 1 }) };

describe('Auto Scaling rules', () => {
  it('autoscaling.group-name: 1..255 characters', () => {
    expect(validateAutoScaling(create({ AutoScalingGroupName: 'a'.repeat(256) }), noGroup)?.rule.id).toBe(A.groupName.id);
    expect(validateAutoScaling(create({ AutoScalingGroupName: 'a'.repeat(255) }), noGroup)).toBeUndefined();
  });
  it('autoscaling.too-many-tags: at most 50', () => {
    const tags = (n: number) => asgTags(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
    expect(validateAutoScaling(create(tags(51)), noGroup)?.rule.id).toBe(A.tooManyTags.id);
    expect(validateAutoScaling(create(tags(50)), noGroup)).toBeUndefined();
  });
  it('autoscaling.tag-length: key 1..128, value ≤ 256', () => {
    expect(validateAutoScaling(create(asgTags([['k'.repeat(129), 'v']])), noGroup)?.rule.id).toBe(A.tagLength.id);
    expect(validateAutoScaling(create(asgTags([['k', 'v'.repeat(257)]])), noGroup)?.rule.id).toBe(A.tagLength.id);
    expect(validateAutoScaling(create(asgTags([['k'.repeat(128), 'v'.repeat(256)]])), noGroup)).toBeUndefined();
  });
  it('autoscaling.tag-aws-prefix', () => {
    expect(validateAutoScaling(create(asgTags([['AWS:x', 'v']])), noGroup)?.rule.id).toBe(A.tagAwsPrefix.id);
    expect(validateAutoScaling(create(asgTags([['gq:job', 'v']])), noGroup)).toBeUndefined();
  });
  it('autoscaling.desired-outside-sizes: at create, and SetDesiredCapacity against the group (moto accepts it)', () => {
    expect(validateAutoScaling(create({ DesiredCapacity: 3 }), noGroup)?.message).toBe('Desired capacity:3 must be between the specified min size:0 and max size:2');
    const set = (n: number) => form({ Action: 'SetDesiredCapacity', AutoScalingGroupName: 'g', DesiredCapacity: n });
    expect(validateAutoScaling(set(3), group)?.message).toBe('New SetDesiredCapacity value 3 is above max value 2 for the AutoScalingGroup.');
    expect(validateAutoScaling(set(2), group)).toBeUndefined();
    expect(validateAutoScaling(form({ Action: 'UpdateAutoScalingGroup', AutoScalingGroupName: 'g', DesiredCapacity: 5 }), group)?.rule.id).toBe(A.desiredOutsideSizes.id);
    expect(validateAutoScaling(form({ Action: 'UpdateAutoScalingGroup', AutoScalingGroupName: 'g', MinSize: 0, DesiredCapacity: 0 }), group)).toBeUndefined();
  });
  it('autoscaling.min-above-max', () => {
    expect(validateAutoScaling(create({ MinSize: 3, DesiredCapacity: 3 }), noGroup)?.rule.id).toBe(A.minAboveMax.id);
    expect(validateAutoScaling(create({ MinSize: 2, DesiredCapacity: 2 }), noGroup)).toBeUndefined();
  });
});

const lt = (o: Record<string, string> = {}) =>
  form({ Action: 'CreateLaunchTemplate', Version: '2016-11-15', LaunchTemplateName: 'gq-a-c5.large', 'LaunchTemplateData.UserData': Buffer.from('#!/bin/bash\n').toString('base64'), ...o });
const specTags = (prefix: string, n: number, f: (i: number) => [string, string] = (i) => [`k${i}`, 'v']) =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [[`${prefix}.1.Tag.${i + 1}.Key`, f(i)[0]], [`${prefix}.1.Tag.${i + 1}.Value`, f(i)[1]]]).flat());

describe('EC2 rules', () => {
  it('ec2.launch-template-name: 3..128 of [a-zA-Z0-9().-/_]', () => {
    expect(validateEc2(lt({ LaunchTemplateName: 'gq:a' }))?.rule.id).toBe(E.launchTemplateName.id);
    expect(validateEc2(lt({ LaunchTemplateName: 'a'.repeat(129) }))?.rule.id).toBe(E.launchTemplateName.id);
    expect(validateEc2(lt({ LaunchTemplateName: `gq-(a)/b_c.${'d'.repeat(117)}` }))).toBeUndefined();
  });
  it('ec2.user-data-too-large: 16 KB counted before base64 encoding', () => {
    expect(validateEc2(lt({ 'LaunchTemplateData.UserData': Buffer.alloc(16 * 1024 + 1, 97).toString('base64') }))?.rule.id).toBe(E.userDataTooLarge.id);
    expect(validateEc2(lt({ 'LaunchTemplateData.UserData': Buffer.alloc(16 * 1024, 97).toString('base64') }))).toBeUndefined();
  });
  it('ec2.user-data-not-base64', () => {
    expect(validateEc2(lt({ 'LaunchTemplateData.UserData': '#!/bin/bash' }))?.rule.id).toBe(E.userDataNotBase64.id);
  });
  it('ec2.too-many-tags, ec2.tag-length, ec2.tag-aws-prefix (template and instance tag specifications)', () => {
    expect(validateEc2(lt(specTags('TagSpecification', 51)))?.rule.id).toBe(E.tooManyTags.id);
    expect(validateEc2(lt(specTags('LaunchTemplateData.TagSpecification', 51)))?.rule.id).toBe(E.tooManyTags.id);
    expect(validateEc2(lt(specTags('TagSpecification', 50)))).toBeUndefined();
    expect(validateEc2(lt(specTags('TagSpecification', 1, () => ['k'.repeat(129), 'v'])))?.rule.id).toBe(E.tagLength.id);
    expect(validateEc2(lt(specTags('TagSpecification', 1, () => ['k', 'v'.repeat(257)])))?.rule.id).toBe(E.tagLength.id);
    expect(validateEc2(lt(specTags('LaunchTemplateData.TagSpecification', 1, () => ['aws:cloudformation:x', 'v'])))?.rule.id).toBe(E.tagAwsPrefix.id);
    expect(validateEc2(lt(specTags('TagSpecification', 1, () => ['k'.repeat(128), 'v'.repeat(256)])))).toBeUndefined();
  });
  it('every rule cites an AWS page', () => {
    for (const r of [...Object.values(A), ...Object.values(E)]) expect(r.doc).toMatch(/^https:\/\/docs\.aws\.amazon\.com\//);
  });
});
