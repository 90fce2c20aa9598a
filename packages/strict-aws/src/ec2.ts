/**
 * EC2 (query protocol, `Action=<Operation>&Version=2016-11-15`): the launch template gq creates
 * and the tags it puts on it. Pure: `validateEc2(params)`.
 */
import { members, tags, type Params } from './query.js';
import { defineRules, violation, type Violation } from './rules.js';

const API = 'https://docs.aws.amazon.com/AWSEC2/latest/APIReference';
const TAGS_DOC = 'https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html';

export const EC2_RULES = defineRules('ec2', {
  launchTemplateName: {
    id: 'ec2.launch-template-name', summary: 'a launch template name not of 3-128 [a-zA-Z0-9().-/_]', doc: `${API}/API_CreateLaunchTemplate.html`,
    status: 400, code: 'InvalidLaunchTemplateName.MalformedException',
  },
  userDataTooLarge: {
    id: 'ec2.user-data-too-large', summary: 'user data over 16 KB before base64 encoding', doc: 'https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html',
    status: 400, code: 'InvalidParameterValue',
  },
  userDataNotBase64: {
    id: 'ec2.user-data-not-base64', summary: 'user data that is not base64', doc: 'https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html',
    status: 400, code: 'InvalidUserData.Malformed',
  },
  tooManyTags: { id: 'ec2.too-many-tags', summary: 'more than 50 tags on one resource', doc: TAGS_DOC, status: 400, code: 'TagLimitExceeded' },
  tagLength: { id: 'ec2.tag-length', summary: 'a tag key of 0 or over 128, or a value over 256 characters', doc: TAGS_DOC, status: 400, code: 'InvalidParameterValue' },
  tagAwsPrefix: { id: 'ec2.tag-aws-prefix', summary: 'a tag key starting with aws:', doc: TAGS_DOC, status: 400, code: 'InvalidParameterValue' },
});
const R = EC2_RULES;

/** 16 KB of user data, counted before base64 encoding. */
export const MAX_USER_DATA_BYTES = 16 * 1024;

function checkTagList(list: Array<{ key: string; value: string }>): Violation | undefined {
  if (list.length > 50) return violation(R.tooManyTags, 'The maximum number of Tags for a resource has been reached.');
  for (const t of list) {
    if (t.key.length < 1 || t.key.length > 128) return violation(R.tagLength, 'Tag key must be between 1 and 128 characters long.');
    if (t.value.length > 256) return violation(R.tagLength, `Tag value exceeds the maximum length of 256 characters (key ${t.key}).`);
    if (/^aws:/i.test(t.key)) return violation(R.tagAwsPrefix, "Tag keys starting with 'aws:' are reserved for internal use");
  }
  return undefined;
}

function checkTagSpecifications(p: Params, prefix: string): Violation | undefined {
  for (const spec of members(p, prefix)) {
    const v = checkTagList(tags(p, `${spec}.Tag`));
    if (v) return v;
  }
  return undefined;
}

function checkUserData(b64: string | null): Violation | undefined {
  if (b64 === null) return undefined;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) return violation(R.userDataNotBase64, 'Invalid BASE64 encoding of user data.');
  const bytes = Buffer.from(b64, 'base64').length;
  if (bytes > MAX_USER_DATA_BYTES) return violation(R.userDataTooLarge, `User data is limited to ${MAX_USER_DATA_BYTES} bytes (${bytes} given).`);
  return undefined;
}

/** The first documented refusal of an EC2 request, or undefined. */
export function validateEc2(p: Params): Violation | undefined {
  switch (p.get('Action')) {
    case 'CreateLaunchTemplate': {
      const name = p.get('LaunchTemplateName') ?? '';
      if (!/^[a-zA-Z0-9().\-/_]{3,128}$/.test(name)) {
        return violation(R.launchTemplateName, "A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.'");
      }
      return (
        checkUserData(p.get('LaunchTemplateData.UserData')) ??
        checkTagSpecifications(p, 'TagSpecification') ??
        checkTagSpecifications(p, 'LaunchTemplateData.TagSpecification')
      );
    }
    case 'CreateLaunchTemplateVersion':
      return checkUserData(p.get('LaunchTemplateData.UserData')) ?? checkTagSpecifications(p, 'LaunchTemplateData.TagSpecification');
    case 'RunInstances':
      return checkUserData(p.get('UserData')) ?? checkTagSpecifications(p, 'TagSpecification');
    case 'CreateTags':
      return checkTagList(tags(p, 'Tag'));
    default:
      return undefined;
  }
}
