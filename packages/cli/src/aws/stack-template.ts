/**
 * The CloudFormation template shipped with gq (infra/gq.yaml): where it is, its text, and its
 * parse with the short-form intrinsics (!Ref, !Sub, ...) in their long JSON form. Pure but for
 * reading the file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, type ScalarTag, type CollectionTag } from 'yaml';
import { GqError } from '@gq/common';

/**
 * Where infra/gq.yaml may be, relative to this module. The compiled file is
 * packages/cli/dist/aws/stack.js and the source is packages/cli/src/aws/stack.ts:
 * both are four folders below the repository root, so one relative path serves the built CLI
 * and the tests that import the source. The second candidate is a copy inside the package
 * (packages/cli/infra/gq.yaml), for a packed package that carries its own copy.
 */
export function templateCandidates(): string[] {
  return [
    fileURLToPath(new URL('../../../../infra/gq.yaml', import.meta.url)),
    fileURLToPath(new URL('../../infra/gq.yaml', import.meta.url)),
  ];
}

/** Path of the shipped template (the first candidate that exists). */
export function templatePath(): string {
  const candidates = templateCandidates();
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new GqError(`gq's CloudFormation template is missing; looked for: ${candidates.join(', ')}`);
  }
  return found;
}

/** The text of infra/gq.yaml as shipped with this gq. */
export function readTemplate(): string {
  return readFileSync(templatePath(), 'utf8');
}

/** CloudFormation's YAML short forms (!Ref, !Sub, ...), mapped to their long JSON forms. */
const INTRINSICS = [
  'And', 'Base64', 'Cidr', 'Condition', 'Equals', 'FindInMap', 'GetAtt', 'GetAZs', 'If',
  'ImportValue', 'Join', 'Not', 'Or', 'Ref', 'Select', 'Split', 'Sub', 'Transform', 'ToJsonString',
  'Length',
] as const;

function longName(name: string): string {
  return name === 'Ref' || name === 'Condition' ? name : `Fn::${name}`;
}

function cfnTags(): Array<ScalarTag | CollectionTag> {
  const tags: Array<ScalarTag | CollectionTag> = [];
  for (const name of INTRINSICS) {
    const key = longName(name);
    tags.push({
      tag: `!${name}`,
      resolve: (str: string) => {
        // !GetAtt Res.Attr is the short form of Fn::GetAtt: [Res, Attr].
        if (name === 'GetAtt') {
          const dot = str.indexOf('.');
          return { [key]: dot < 0 ? [str] : [str.slice(0, dot), str.slice(dot + 1)] };
        }
        return { [key]: str };
      },
    });
    for (const collection of ['seq', 'map'] as const) {
      tags.push({
        tag: `!${name}`,
        collection,
        resolve: (node) => ({ [key]: node.toJSON() }) as never,
      });
    }
  }
  return tags;
}

/** A parsed template: plain JSON with intrinsic functions in their long form ({"Fn::Sub": ...}). */
export type CfnTemplate = {
  Parameters?: Record<string, { Type: string; Default?: string; [k: string]: unknown }>;
  Conditions?: Record<string, unknown>;
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown>; [k: string]: unknown }>;
  Outputs?: Record<string, { Value: unknown; Condition?: string; [k: string]: unknown }>;
  [k: string]: unknown;
};

/** Parse a CloudFormation YAML template, short-form intrinsics included. */
export function parseTemplate(text: string): CfnTemplate {
  const doc = parseYaml(text, { customTags: cfnTags(), prettyErrors: true }) as CfnTemplate | null;
  if (!doc || typeof doc !== 'object' || !doc.Resources) {
    throw new GqError('CloudFormation template has no Resources section');
  }
  return doc;
}

/** The TemplateVersion output of a template (the shipped one by default). */
export function templateVersion(text: string = readTemplate()): string {
  const v = parseTemplate(text).Outputs?.TemplateVersion?.Value;
  if (typeof v !== 'string' && typeof v !== 'number') {
    throw new GqError('CloudFormation template has no literal TemplateVersion output');
  }
  return String(v);
}
