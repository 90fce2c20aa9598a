/**
 * Instance types in a job file: what is written like an EC2 instance type (`family.size` in
 * lower case) or `local`, the problem with one that is not, and a guess at what was meant.
 */
import { closest, editDistance } from '../../edit-distance.js';
import type { BackendName } from '../model.js';
import { MAX_INSTANCE_TYPE_LENGTH } from './format.js';
import { show, type Finding } from './problems.js';

const FAMILY = String.raw`(?:u-\d+tb\d+|[a-z]+\d+[a-z0-9]*(?:-[a-z0-9]+)*)`;
const SIZE = String.raw`(?:nano|micro|small|medium|large|xlarge|[1-9]\d*xlarge|metal(?:-[1-9]\d*xl)?)`;
const EC2_INSTANCE_TYPE = new RegExp(`^${FAMILY}\\.${SIZE}$`);
const FAMILY_ONLY = new RegExp(`^${FAMILY}$`);
const SIZE_ONLY = new RegExp(`^${SIZE}$`);
const SIZE_WORDS = ['nano', 'micro', 'small', 'medium', 'large', 'xlarge', 'metal'];

/** The instance type that runs tasks on the submitting machine (local backend). */
export const LOCAL_INSTANCE_TYPE = 'local';

/** Whether `s` is written like an EC2 instance type: `family.size` in lower case (t3.micro, m7i-flex.large, u-6tb1.metal). */
export function isEc2InstanceType(s: string): boolean {
  return s.length <= MAX_INSTANCE_TYPE_LENGTH && EC2_INSTANCE_TYPE.test(s);
}

/**
 * Whether a job file accepts `s` as an instance type: an EC2 instance type or `local`. (Only the
 * syntax is checked; whether the type exists in a region is for the AWS backend to say.)
 */
export function isValidInstanceType(s: string): boolean {
  return s === LOCAL_INSTANCE_TYPE || isEc2InstanceType(s);
}

/** A valid size close to `size` (a typo such as `smal`, `xxlarge`, `2xl`), if there is one. */
function fixSize(size: string): string | undefined {
  if (SIZE_ONLY.test(size)) return size;
  const xs = /^(x{2,})l(?:arge?)?$/.exec(size);
  if (xs?.[1]) return `${xs[1].length}xlarge`;
  const xl = /^([1-9]\d*)?x(?:l|lg|lrg|large?)$/.exec(size);
  if (xl) return `${xl[1] ?? ''}xlarge`;
  const m = /^([1-9]\d*)(.*)$/.exec(size);
  if (m?.[1] && m[2] !== undefined && editDistance(m[2], 'xlarge') <= 2) return `${m[1]}xlarge`;
  return closest(size, SIZE_WORDS, 3);
}

/** `family.size` with a fixable size, if the family part is sound. */
function fixDotted(s: string): string | undefined {
  const dot = s.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const family = s.slice(0, dot);
  if (!FAMILY_ONLY.test(family)) return undefined;
  const size = fixSize(s.slice(dot + 1));
  const fixed = size === undefined ? undefined : `${family}.${size}`;
  return fixed !== undefined && isEc2InstanceType(fixed) ? fixed : undefined;
}

/**
 * A guess at the instance type meant by a malformed one (`T2.Small` → `t2.small`, `t2small` →
 * `t2.small`, `t3_micro` → `t3.micro`, `m5.xxlarge` → `m5.2xlarge`, `Local` → `local`), or
 * undefined when nothing close is valid.
 */
export function suggestInstanceType(raw: string): string | undefined {
  const s = raw.trim().toLowerCase().replace(/\s+/g, '');
  if (!s || s.length > 64) return undefined;
  if (isValidInstanceType(s)) return s === raw ? undefined : s;
  if (s.startsWith(LOCAL_INSTANCE_TYPE) || editDistance(s, LOCAL_INSTANCE_TYPE) <= 1) return LOCAL_INSTANCE_TYPE;
  // Stray dots: `t2..small`, `t2.small.`, `.t2.small`.
  const dots = s.replace(/\.{2,}/g, '.').replace(/^\.+|\.+$/g, '');
  if (dots !== s && isEc2InstanceType(dots)) return dots;
  // Another separator instead of the dot: `t2_small`, `t2-small`, `t2:small`, `m7i-flex-large`.
  if (!dots.includes('.')) {
    for (let i = dots.length - 1; i > 0; i--) {
      if ('_-,:;/\\'.includes(dots[i] ?? '')) {
        const c = `${dots.slice(0, i)}.${dots.slice(i + 1)}`;
        const fixed = isEc2InstanceType(c) ? c : fixDotted(c);
        if (fixed) return fixed;
      }
    }
    // No dot at all: `t2small`, `c5n2xlarge`. Prefer the longest valid size.
    for (let i = 1; i < dots.length; i++) {
      const c = `${dots.slice(0, i)}.${dots.slice(i)}`;
      if (isEc2InstanceType(c)) return c;
    }
    return undefined;
  }
  return fixDotted(dots);
}

const INSTANCE_TYPE_HINT =
  'write an EC2 instance type as family.size in lower case, e.g. t3.micro, c5n.2xlarge, m7i-flex.large (or local to run on this machine)';

/** Checks one instance type as written in the file; returns undefined when it is fine, else the problem. */
export function instanceTypeProblem(raw: string, backend: BackendName | undefined): Finding | undefined {
  const s = raw.trim();
  if (s === '') return { message: 'the instance type is empty', hint: INSTANCE_TYPE_HINT };
  if (s === LOCAL_INSTANCE_TYPE) {
    if (backend === 'aws') {
      return {
        message: 'the instance type "local" runs tasks on this machine, but this job is for the aws backend',
        hint: 'write an EC2 instance type such as t3.micro, or submit with the local backend',
      };
    }
    return undefined;
  }
  if (isEc2InstanceType(s)) return undefined;
  if (s.length > MAX_INSTANCE_TYPE_LENGTH && EC2_INSTANCE_TYPE.test(s)) {
    return {
      message: `the instance type ${show(s)} is ${s.length} characters long; the limit is ${MAX_INSTANCE_TYPE_LENGTH}`,
      hint: INSTANCE_TYPE_HINT,
    };
  }
  const guess = suggestInstanceType(s);
  const why =
    s !== s.toLowerCase()
      ? ' (instance types are lower case)'
      : guess && !s.includes('.') && guess !== LOCAL_INSTANCE_TYPE
        ? ' (the dot between family and size is missing)'
        : '';
  return {
    message: `${show(s)} is not an instance type${why}`,
    hint: guess ? `did you mean "${guess}"?` : INSTANCE_TYPE_HINT,
  };
}
