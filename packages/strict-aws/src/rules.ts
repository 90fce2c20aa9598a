/**
 * A strict rule: one documented AWS refusal, declared as data. The validators (one module per
 * service) return a Violation naming the rule and the message AWS would send; the proxy renders it
 * in the service's protocol (errors.ts).
 */

export type Service = 'dynamodb' | 'sqs' | 's3' | 'autoscaling' | 'ec2';

export interface Rule {
  /** Stable id, `<service>.<what>`, e.g. `dynamodb.names-empty`. */
  readonly id: string;
  readonly service: Service;
  /** What AWS refuses, in a few words. */
  readonly summary: string;
  /** The AWS documentation page the rule comes from. */
  readonly doc: string;
  /** HTTP status AWS answers with. */
  readonly status: number;
  /** AWS's error code (the SDK error's `name`). */
  readonly code: string;
  /** SQS (awsQueryCompatible JSON): the query-protocol code sent in x-amzn-query-error. */
  readonly queryCode?: string;
}

export interface Violation {
  readonly rule: Rule;
  /** The message AWS sends for this request. */
  readonly message: string;
}

/** A refused request, as the layer records it. */
export interface Rejection {
  readonly rule: string;
  readonly service: Service;
  readonly operation: string;
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly at: string;
}

export function violation(rule: Rule, message: string): Violation {
  return { rule, message };
}

/** Define the rules of a module, keyed by a short name (ids are checked for uniqueness in tests). */
export function defineRules<K extends string>(service: Service, rules: Record<K, Omit<Rule, 'service'>>): Record<K, Rule> {
  const out = {} as Record<K, Rule>;
  for (const [k, r] of Object.entries(rules) as Array<[K, Omit<Rule, 'service'>]>) out[k] = Object.freeze({ ...r, service });
  return out;
}

/** UTF-8 byte length. */
export const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');
