/**
 * The layer over HTTP, in front of moto (test/support/moto.ts starts moto behind it): a refused
 * request reaches the SDK as AWS's typed error, never moto; a valid one is answered by moto; moto's
 * own API (reset) goes through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchGetItemCommand, QueryCommand, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, SendMessageBatchCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { CreateAutoScalingGroupCommand, SetDesiredCapacityCommand } from '@aws-sdk/client-auto-scaling';
import { CreateLaunchTemplateCommand } from '@aws-sdk/client-ec2';
import { describeAws, createSharedResources, motoClients, resetMoto, startMoto, type Moto } from '../../../test/support/moto.js';
import type { AwsClients } from '../../common/src/aws/clients.js';
import { startStrictLayer, type StrictLayer } from '../src/index.js';


const errorOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return err as Error & { $metadata?: { httpStatusCode?: number }; Code?: string };
  }
  throw new Error('expected a refusal');
};

describeAws('strict layer over HTTP (moto behind it)', () => {
  let moto: Moto;
  let layer: StrictLayer;
  let c: AwsClients;
  let table: string;
  let bucket: string;

  beforeAll(async () => {
    moto = (await startMoto())!;
    // A second layer of our own in front of the harness's, to read its rejections.
    layer = await startStrictLayer({ upstream: moto.endpoint });
    c = motoClients(layer.endpoint);
    ({ table, bucket } = await createSharedResources(layer.endpoint));
  });
  afterAll(async () => {
    c?.destroy();
    await layer?.stop();
    await moto?.stop();
  });

  it('DynamoDB: an empty ExpressionAttributeNames is a ValidationException with DynamoDB’s message', async () => {
    const input = { TableName: table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: 'JOB#x' } } };
    const err = await errorOf(c.dynamodb.send(new QueryCommand({ ...input, ExpressionAttributeNames: {} })));
    expect(err.name).toBe('ValidationException');
    expect(err.message).toBe('ExpressionAttributeNames must not be empty');
    expect(err.$metadata?.httpStatusCode).toBe(400);
    expect(layer.rejections.at(-1)).toMatchObject({ rule: 'dynamodb.names-empty', service: 'dynamodb', operation: 'Query' });
    await expect(c.dynamodb.send(new QueryCommand(input))).resolves.toMatchObject({ Count: 0 });
  });

  it('DynamoDB: a BatchGetItem with one key twice, refused; moto’s own errors pass through', async () => {
    const k = { pk: { S: 'a' }, sk: { S: 'b' } };
    const err = await errorOf(c.dynamodb.send(new BatchGetItemCommand({ RequestItems: { [table]: { Keys: [k, k] } } })));
    expect(err.name).toBe('ValidationException');
    const missing = await errorOf(c.dynamodb.send(new QueryCommand({ TableName: 'nope', KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': { S: 'x' } } })));
    expect(missing).toBeInstanceOf(ResourceNotFoundException);
  });

  it('SQS (JSON protocol): 11 entries is TooManyEntriesInBatchRequest', async () => {
    const { QueueUrl } = await c.sqs.send(new CreateQueueCommand({ QueueName: 'strict-q' }));
    const Entries = Array.from({ length: 11 }, (_, i) => ({ Id: String(i), MessageBody: 'x' }));
    const err = await errorOf(c.sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries })));
    expect(err.name).toBe('TooManyEntriesInBatchRequest');
    expect(err.message).toBe('Maximum number of entries per request are 10. You have sent 11.');
    const ok = await c.sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries: Entries.slice(0, 10) }));
    expect(ok.Successful).toHaveLength(10);
    const bad = await errorOf(c.sqs.send(new CreateQueueCommand({ QueueName: 'a.b' })));
    expect(bad.name).toBe('InvalidParameterValue');
  });

  it('S3: a key over 1024 bytes is KeyTooLongError; a valid object goes to moto and back', async () => {
    const err = await errorOf(c.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k'.repeat(1025), Body: 'x' })));
    expect(err.name).toBe('KeyTooLongError');
    expect(err.$metadata?.httpStatusCode).toBe(400);
    await c.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k'.repeat(1024), Body: 'hello' }));
    const got = await c.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k'.repeat(1024) }));
    expect(await got.Body!.transformToString()).toBe('hello');
  });

  it('S3 multipart: a part under 5 MiB other than the last is EntityTooSmall at CompleteMultipartUpload', async () => {
    const upload = async (first: number) => {
      const Key = `mp-${first}`;
      const { UploadId } = await c.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }));
      const parts = [];
      for (const [n, size] of [[1, first], [2, 1024]] as const) {
        const { ETag } = await c.s3.send(new UploadPartCommand({ Bucket: bucket, Key, UploadId, PartNumber: n, Body: Buffer.alloc(size, 1) }));
        parts.push({ ETag, PartNumber: n });
      }
      return c.s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
    };
    const before = layer.rejections.length;
    const err = await errorOf(upload(1024 * 1024));
    expect(err.name).toBe('EntityTooSmall');
    expect(layer.rejections.slice(before).map((r) => r.rule)).toEqual(['s3.part-too-small']);
    await expect(upload(5 * 1024 * 1024)).resolves.toMatchObject({ Key: 'mp-5242880' });
  });

  it('Auto Scaling: a desired capacity above MaxSize is ValidationError (moto accepts it); EC2 template names', async () => {
    const { Images } = await c.ec2.send(new (await import('@aws-sdk/client-ec2')).DescribeImagesCommand({}));
    const ami = Images![0]!.ImageId!;
    await c.ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: 'strict-lt', LaunchTemplateData: { ImageId: ami, InstanceType: 't3.micro' } }));
    const badName = await errorOf(c.ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: 'a:b', LaunchTemplateData: { ImageId: ami } })));
    expect(badName.name).toBe('InvalidLaunchTemplateName.MalformedException');
    const group = { AutoScalingGroupName: 'strict-g', MinSize: 0, MaxSize: 2, LaunchTemplate: { LaunchTemplateName: 'strict-lt', Version: '$Latest' }, AvailabilityZones: ['us-east-1a'] };
    const tooMany = await errorOf(c.autoscaling.send(new CreateAutoScalingGroupCommand({ ...group, DesiredCapacity: 3 })));
    expect(tooMany.name).toBe('ValidationError');
    await c.autoscaling.send(new CreateAutoScalingGroupCommand({ ...group, DesiredCapacity: 0 }));
    const above = await errorOf(c.autoscaling.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: 'strict-g', DesiredCapacity: 3 })));
    expect(above.name).toBe('ValidationError');
    expect(above.message).toBe('New SetDesiredCapacity value 3 is above max value 2 for the AutoScalingGroup.');
    await c.autoscaling.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: 'strict-g', DesiredCapacity: 0 }));
  });

  it('moto’s reset goes through the layer', async () => {
    await resetMoto(layer.endpoint);
    const err = await errorOf(c.sqs.send(new GetQueueUrlCommand({ QueueName: 'strict-q' })));
    expect(err.name).toMatch(/QueueDoesNotExist|NonExistentQueue/);
  });
});
