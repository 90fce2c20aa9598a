/** The instance's own EC2 tags, for progress seen in the EC2 console (best effort). */
import { CreateTagsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { installCallLog } from '@gq/common/aws/index';

export async function tagInstance(region: string, instance: string, key: string, value: string): Promise<void> {
  const ec2 = new EC2Client({ region, retryMode: 'adaptive' });
  installCallLog(ec2, 'EC2'); // tests only (GQ_TEST_AWS_CALL_LOG)
  try {
    await ec2.send(new CreateTagsCommand({ Resources: [instance], Tags: [{ Key: key, Value: value }] }));
  } catch (err) {
    // An instance holds at most 50 tags (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html),
    // and the keys of every task it ran add up: past that the task's tag stays in gq's status only.
    if ((err as { name?: string }).name !== 'TagLimitExceeded') throw err;
  } finally {
    ec2.destroy();
  }
}
