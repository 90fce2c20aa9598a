/**
 * One job's instances reach only that job; the person running gq reaches only gq's resources.
 *
 * moto does not enforce IAM, so this evaluates the policies of infra/gq.yaml, as deployed by
 * CloudFormation on moto (resolved ARNs, the stack's real bucket, table and key), with the IAM
 * simulator @cloud-copilot/iam-simulate (test/support/iam-eval.ts), against the requests an
 * instance of job "alpha" makes on its own job and on two others: "beta", and "alpha-b" whose
 * resource names start like alpha's (gq-alpha-b-... matches gq-alpha-*: the tags decide).
 *
 * Each refusal has an allowed twin that differs only in the one condition key under test, so
 * each also proves the simulator evaluates that key (aws:PrincipalTag variables,
 * dynamodb:LeadingKeys, aws:ResourceTag, autoscaling:ResourceTag, aws:RequestTag, aws:TagKeys,
 * iam:PassedToService, iam:PermissionsBoundary, iam:PolicyARN, ec2:RoleDelivery, boundaries).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IAMClient } from '@aws-sdk/client-iam';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { deployStack, destroySetupClients, makeSetupClients, type StackOutputs } from '../packages/cli/src/aws/stack.js';
import { describeAws, startMoto, type Moto } from './support/moto.js';
import { agentPrincipal, evaluate, readKeyPolicy, readPolicy, userPrincipal, type IamRequest, type Principal, type StackPolicies } from './support/iam-eval.js';


const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const STACK = 'gq-iso';

describeAws('IAM: per-job isolation and the user policy, evaluated with iam-simulate', () => {
  let moto: Moto;
  let out: StackOutputs;
  let p: StackPolicies;
  let tableArn: string;

  beforeAll(async () => {
    moto = (await startMoto())!;
    process.env.AWS_ENDPOINT_URL = moto.endpoint;
    const c = makeSetupClients(REGION);
    try {
      out = (await deployStack({ cfn: c.cfn, ec2: c.ec2, stackName: STACK, minDelay: 1, maxDelay: 1 })).outputs;
    } finally {
      destroySetupClients(c);
    }
    const iam = new IAMClient({ region: REGION, endpoint: moto.endpoint });
    p = {
      agent: await readPolicy(iam, out.jobAgentPolicyArn),
      boundary: await readPolicy(iam, out.jobRoleBoundaryArn),
      user: await readPolicy(iam, out.userPolicyArn!),
      key: await readKeyPolicy(moto.endpoint, out.kmsKeyArn!, REGION),
    };
    iam.destroy();
    tableArn = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${out.table}`;
  }, 120_000);

  afterAll(async () => {
    delete process.env.AWS_ENDPOINT_URL;
    await moto?.stop();
  });

  const req = (action: string, resource: string, context: IamRequest['context'] = {}): IamRequest => ({
    action,
    resource,
    context: { 'aws:RequestedRegion': REGION, ...context },
    origin: 'test',
  });
  const verdict = async (who: Principal, r: IamRequest) => {
    const v = await evaluate(who, r, ACCOUNT, p.key);
    expect(v.errors, `${r.action} ${r.resource}: simulator error`).toBeUndefined();
    return v.result;
  };
  const allowed = async (who: Principal, r: IamRequest) => expect(await verdict(who, r), `${r.action} ${r.resource} ${JSON.stringify(r.context)}`).toBe('Allowed');
  const refused = async (who: Principal, r: IamRequest) => expect(await verdict(who, r), `${r.action} ${r.resource} ${JSON.stringify(r.context)}`).not.toBe('Allowed');

  const queue = (job: string) => `arn:aws:sqs:${REGION}:${ACCOUNT}:gq-${job}-t3_micro`;
  const group = (job: string) => `arn:aws:autoscaling:${REGION}:${ACCOUNT}:autoScalingGroup:00000000-0000-4000-8000-000000000000:autoScalingGroupName/gq-${job}-t3.micro`;
  const object = (key: string) => `arn:aws:s3:::${out.bucket}/${key}`;
  const alpha = () => agentPrincipal(p, ACCOUNT, REGION, 'alpha');

  it("lets an instance of job alpha use its own queue messages and refuses another job's, even one named like it", async () => {
    for (const action of ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:SendMessage', 'sqs:GetQueueAttributes']) {
      await allowed(alpha(), req(action, queue('alpha'), { 'aws:ResourceTag/gq:job': 'alpha' }));
      await refused(alpha(), req(action, queue('alpha-b'), { 'aws:ResourceTag/gq:job': 'alpha-b' }));
      await refused(alpha(), req(action, queue('beta'), { 'aws:ResourceTag/gq:job': 'beta' }));
    }
    // A queue without gq's tag, and a queue that is not gq's.
    await refused(alpha(), req('sqs:ReceiveMessage', queue('alpha')));
    await refused(alpha(), req('sqs:ReceiveMessage', `arn:aws:sqs:${REGION}:${ACCOUNT}:other-alpha`, { 'aws:ResourceTag/gq:job': 'alpha' }));
    for (const action of ['sqs:DeleteQueue', 'sqs:PurgeQueue', 'sqs:SetQueueAttributes', 'sqs:TagQueue']) {
      await refused(alpha(), req(action, queue('alpha'), { 'aws:ResourceTag/gq:job': 'alpha' }));
    }
    // The same request from job beta's instance is refused on alpha's queue (aws:PrincipalTag).
    await refused(agentPrincipal(p, ACCOUNT, REGION, 'beta'), req('sqs:ReceiveMessage', queue('alpha'), { 'aws:ResourceTag/gq:job': 'alpha' }));
  });

  it("lets it read and change its own job's items, its licence included, and refuses another job's", async () => {
    for (const action of ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:DeleteItem']) {
      await allowed(alpha(), req(action, tableArn, { 'dynamodb:LeadingKeys': ['JOB#alpha'] }));
      await refused(alpha(), req(action, tableArn, { 'dynamodb:LeadingKeys': ['JOB#beta'] }));
      await refused(alpha(), req(action, tableArn, { 'dynamodb:LeadingKeys': ['JOB#alpha-b'] }));
    }
    // The licence is the item JOB#<job> / SECRET#licence: the partition decides.
    await allowed(alpha(), req('dynamodb:GetItem', tableArn, { 'dynamodb:LeadingKeys': ['JOB#alpha'] }));
    await refused(alpha(), req('dynamodb:GetItem', tableArn, { 'dynamodb:LeadingKeys': ['JOB#beta'] }));
    // A batch that mixes its own partition with another's, the job index, a request without keys.
    await allowed(alpha(), req('dynamodb:BatchGetItem', tableArn, { 'dynamodb:LeadingKeys': ['JOB#alpha'] }));
    await refused(alpha(), req('dynamodb:BatchGetItem', tableArn, { 'dynamodb:LeadingKeys': ['JOB#alpha', 'JOB#beta'] }));
    await refused(alpha(), req('dynamodb:Query', tableArn, { 'dynamodb:LeadingKeys': ['JOBS'] }));
    await refused(alpha(), req('dynamodb:GetItem', tableArn));
    await refused(alpha(), req('dynamodb:Scan', tableArn));
    await refused(alpha(), req('dynamodb:BatchWriteItem', tableArn, { 'dynamodb:LeadingKeys': ['JOB#alpha'] }));
  });

  it("lets it write its own job's outputs and read shared inputs, and refuses another job's prefix", async () => {
    for (const key of ['jobs/alpha/tasks/3/log.txt', 'jobs/alpha/tasks/3/files/results.csv', 'jobs/alpha/instances/i-1/userdata.log']) {
      await allowed(alpha(), req('s3:PutObject', object(key)));
      await refused(alpha(), req('s3:PutObject', object(key.replace('jobs/alpha/', 'jobs/beta/'))));
      await refused(alpha(), req('s3:PutObject', object(key.replace('jobs/alpha/', 'jobs/alpha-b/'))));
    }
    await allowed(alpha(), req('s3:GetObject', object('jobs/alpha/install.sh')));
    await refused(alpha(), req('s3:GetObject', object('jobs/beta/install.sh')));
    await refused(alpha(), req('s3:GetObject', object('jobs/beta/tasks/1/files/results.csv')));
    await refused(alpha(), req('s3:GetObject', object('jobs/alpha/tasks/1/files/results.csv'))); // write-only outputs
    // A task's checkpoint is read back by the next attempt (its own job's only).
    await allowed(alpha(), req('s3:GetObject', object('jobs/alpha/tasks/1/checkpoint.tar.gz')));
    await refused(alpha(), req('s3:GetObject', object('jobs/beta/tasks/1/checkpoint.tar.gz')));
    await refused(alpha(), req('s3:GetObject', object('jobs/alpha-b/tasks/1/checkpoint.tar.gz')));
    await allowed(alpha(), req('s3:GetObject', object('bundles/0123.tar.gz')));
    await allowed(alpha(), req('s3:GetObject', object('agent/gq-agent-1.mjs')));
    await refused(alpha(), req('s3:PutObject', object('bundles/0123.tar.gz')));
    await refused(alpha(), req('s3:PutObject', object('agent/gq-agent-1.mjs')));
    await refused(alpha(), req('s3:ListBucket', `arn:aws:s3:::${out.bucket}`));
    await refused(alpha(), req('s3:GetObject', 'arn:aws:s3:::someone-elses-bucket/jobs/alpha/install.sh'));
    const via = { 'kms:ViaService': `s3.${REGION}.amazonaws.com` };
    await allowed(alpha(), req('kms:Decrypt', out.kmsKeyArn!, via));
    await refused(alpha(), req('kms:Decrypt', out.kmsKeyArn!));
  });

  it("lets it protect and leave its own job's groups, raise its own on-demand groups and tag its own instance, and nothing of another job", async () => {
    for (const action of ['autoscaling:SetInstanceProtection', 'autoscaling:TerminateInstanceInAutoScalingGroup']) {
      await allowed(alpha(), req(action, group('alpha'), { 'autoscaling:ResourceTag/gq:job': 'alpha' }));
      await refused(alpha(), req(action, group('alpha-b'), { 'autoscaling:ResourceTag/gq:job': 'alpha-b' }));
      await refused(alpha(), req(action, group('beta'), { 'autoscaling:ResourceTag/gq:job': 'beta' }));
    }
    // Raising a group: only its own job's on-demand groups (agent/src/on-demand.ts), never its
    // Spot group (no gq:pool tag), never another job's on-demand group.
    const od = (job: string) => ({ 'autoscaling:ResourceTag/gq:job': job, 'autoscaling:ResourceTag/gq:pool': 'on-demand' });
    await allowed(alpha(), req('autoscaling:SetDesiredCapacity', `${group('alpha')}-od`, od('alpha')));
    await refused(alpha(), req('autoscaling:SetDesiredCapacity', group('alpha'), { 'autoscaling:ResourceTag/gq:job': 'alpha' }));
    await refused(alpha(), req('autoscaling:SetDesiredCapacity', `${group('beta')}-od`, od('beta')));
    await refused(alpha(), req('autoscaling:SetDesiredCapacity', `${group('alpha-b')}-od`, od('alpha-b')));
    await refused(alpha(), req('autoscaling:SetDesiredCapacity', `${group('alpha')}-od`, { 'autoscaling:ResourceTag/gq:pool': 'on-demand' }));
    for (const action of ['autoscaling:UpdateAutoScalingGroup', 'autoscaling:DeleteAutoScalingGroup', 'autoscaling:CreateAutoScalingGroup']) {
      await refused(alpha(), req(action, `${group('alpha')}-od`, od('alpha')));
    }
    await allowed(alpha(), req('autoscaling:DescribeAutoScalingGroups', '*'));
    const instance = `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/i-0123456789abcdef0`;
    await allowed(alpha(), req('ec2:CreateTags', instance, { 'aws:ResourceTag/gq:job': 'alpha', 'aws:TagKeys': ['percent_complete'], 'aws:RequestTag/percent_complete': '50' }));
    await refused(alpha(), req('ec2:CreateTags', instance, { 'aws:ResourceTag/gq:job': 'beta', 'aws:TagKeys': ['percent_complete'] }));
    // Never a gq:* tag: an instance cannot move itself to another job.
    await refused(alpha(), req('ec2:CreateTags', instance, { 'aws:ResourceTag/gq:job': 'alpha', 'aws:TagKeys': ['gq:job'], 'aws:RequestTag/gq:job': 'beta' }));
  });

  it('refuses everything to credentials that came through IMDSv1, and grants no IAM or STS at all', async () => {
    const v1 = { ...alpha(), context: { ...alpha().context, 'ec2:RoleDelivery': '1.0' } };
    await refused(v1, req('sqs:ReceiveMessage', queue('alpha'), { 'aws:ResourceTag/gq:job': 'alpha' }));
    await refused(v1, req('dynamodb:GetItem', tableArn, { 'dynamodb:LeadingKeys': ['JOB#alpha'] }));
    await refused(alpha(), req('iam:TagRole', `arn:aws:iam::${ACCOUNT}:role${out.jobRolePath}gq-alpha-us-east-1`, { 'aws:TagKeys': ['gq-job'], 'aws:RequestTag/gq-job': 'beta' }));
    await refused(alpha(), req('iam:PassRole', `arn:aws:iam::${ACCOUNT}:role${out.jobRolePath}gq-beta-us-east-1`));
    await refused(alpha(), req('sts:AssumeRole', `arn:aws:iam::${ACCOUNT}:role${out.jobRolePath}gq-beta-us-east-1`));
  });

  it('caps a job role at the boundary whatever policy it is given', async () => {
    const admin = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };
    const widened: Principal = { ...alpha(), policies: [{ name: 'AdministratorAccess', document: admin }] };
    await refused(widened, req('iam:CreateUser', `arn:aws:iam::${ACCOUNT}:user/x`));
    await refused(widened, req('s3:GetObject', 'arn:aws:s3:::someone-elses-bucket/x'));
    await refused(widened, req('dynamodb:Scan', tableArn));
    await allowed(widened, req('s3:GetObject', object('bundles/x.tar.gz')));
  });

  it("lets the user pass only gq's job roles, to EC2 only, and create them only with the boundary and the agent policy", async () => {
    const user = userPrincipal(p, ACCOUNT);
    const role = `arn:aws:iam::${ACCOUNT}:role${out.jobRolePath}gq-alpha-us-east-1`;
    await allowed(user, req('iam:PassRole', role, { 'iam:PassedToService': 'ec2.amazonaws.com' }));
    await refused(user, req('iam:PassRole', role, { 'iam:PassedToService': 'lambda.amazonaws.com' }));
    await refused(user, req('iam:PassRole', `arn:aws:iam::${ACCOUNT}:role/Admin`, { 'iam:PassedToService': 'ec2.amazonaws.com' }));
    await allowed(user, req('iam:CreateRole', role, { 'iam:PermissionsBoundary': out.jobRoleBoundaryArn }));
    await refused(user, req('iam:CreateRole', role));
    await refused(user, req('iam:CreateRole', role, { 'iam:PermissionsBoundary': `arn:aws:iam::${ACCOUNT}:policy/Other` }));
    await refused(user, req('iam:CreateRole', `arn:aws:iam::${ACCOUNT}:role/elsewhere/x`, { 'iam:PermissionsBoundary': out.jobRoleBoundaryArn }));
    await allowed(user, req('iam:AttachRolePolicy', role, { 'iam:PolicyARN': out.jobAgentPolicyArn }));
    await refused(user, req('iam:AttachRolePolicy', role, { 'iam:PolicyARN': 'arn:aws:iam::aws:policy/AdministratorAccess' }));
    await refused(user, req('iam:PutRolePolicy', role));
    await refused(user, req('iam:DeleteRolePermissionsBoundary', role));
    await allowed(user, req('iam:TagRole', role, { 'aws:TagKeys': ['gq-job', 'gq:stack'], 'aws:RequestTag/gq-job': 'alpha' }));
    await refused(user, req('iam:TagRole', role, { 'aws:TagKeys': ['gq-job', 'team'], 'aws:RequestTag/gq-job': 'alpha' }));
    const slr = `arn:aws:iam::${ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`;
    await allowed(user, req('iam:CreateServiceLinkedRole', slr, { 'iam:AWSServiceName': 'autoscaling.amazonaws.com' }));
    await refused(user, req('iam:CreateServiceLinkedRole', slr, { 'iam:AWSServiceName': 'elasticloadbalancing.amazonaws.com' }));
  });

  it("keeps the user to gq's queues, table, bucket, tagged groups and templates", async () => {
    const user = userPrincipal(p, ACCOUNT);
    await allowed(user, req('sqs:CreateQueue', queue('alpha')));
    await allowed(user, req('sqs:TagQueue', queue('alpha')));
    await refused(user, req('sqs:CreateQueue', `arn:aws:sqs:${REGION}:${ACCOUNT}:payroll`));
    await allowed(user, req('dynamodb:Query', tableArn, { 'dynamodb:LeadingKeys': ['JOBS'] }));
    // The index of FAILED tasks (gq status, gq retry): a Query of it is authorised on its own ARN.
    await allowed(user, req('dynamodb:Query', `${tableArn}/index/failed`));
    await refused(user, req('dynamodb:PutItem', `${tableArn}/index/failed`));
    await refused(user, req('dynamodb:Query', `${tableArn}/index/other`));
    await refused(user, req('dynamodb:DeleteTable', tableArn));
    await refused(user, req('dynamodb:GetItem', `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/other`));
    await allowed(user, req('s3:GetObject', object('jobs/alpha/tasks/1/log.txt')));
    await refused(user, req('s3:DeleteObject', object('jobs/alpha/tasks/1/log.txt'))); // clean keeps results
    await refused(user, req('s3:GetObject', 'arn:aws:s3:::someone-elses-bucket/x'));
    await refused(user, req('s3:DeleteBucket', `arn:aws:s3:::${out.bucket}`));
    await allowed(user, req('autoscaling:CreateAutoScalingGroup', group('alpha'), { 'aws:RequestTag/gq:job': 'alpha', 'aws:TagKeys': ['gq:job'] }));
    await refused(user, req('autoscaling:CreateAutoScalingGroup', group('alpha'), { 'aws:TagKeys': ['Name'] }));
    await allowed(user, req('autoscaling:DeleteAutoScalingGroup', group('alpha'), { 'autoscaling:ResourceTag/gq:job': 'alpha' }));
    await refused(user, req('autoscaling:DeleteAutoScalingGroup', group('alpha')));
    const lt = `arn:aws:ec2:${REGION}:${ACCOUNT}:launch-template/lt-0123456789abcdef0`;
    await allowed(user, req('ec2:CreateTags', lt, { 'ec2:CreateAction': 'CreateLaunchTemplate', 'aws:TagKeys': ['gq:job'] }));
    await refused(user, req('ec2:CreateTags', `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/i-0123456789abcdef0`, { 'aws:TagKeys': ['gq:job'] }));
    await allowed(user, req('ec2:RunInstances', `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/*`, { 'ec2:LaunchTemplate': lt }));
    await refused(user, req('ec2:RunInstances', `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/*`));
    await refused(user, req('ec2:TerminateInstances', `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/i-0123456789abcdef0`));
  });

  it('simulator fidelity: a ${aws:PrincipalTag/...} variable in an SQS Resource ARN is not matched (why gq scopes queues by tag)', async () => {
    // Recorded so that an upgrade of iam-simulate that fixes it shows up here; AWS itself does
    // substitute the variable (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html).
    const policy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sqs:ReceiveMessage', Resource: `arn:aws:sqs:${REGION}:${ACCOUNT}:gq-\${aws:PrincipalTag/gq-job}-*` }] };
    const r = await runSimulation(
      {
        request: { principal: alpha().arn, action: 'sqs:ReceiveMessage', resource: { resource: queue('alpha'), accountId: ACCOUNT }, contextVariables: { 'aws:PrincipalTag/gq-job': 'alpha' } },
        identityPolicies: [{ name: 'p', policy }],
        serviceControlPolicies: [],
        resourceControlPolicies: [],
      },
      {},
    );
    expect(r.resultType === 'error' ? 'error' : r.overallResult).toBe('ImplicitlyDenied');
  });
});
