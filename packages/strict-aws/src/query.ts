/** Helpers for the form-encoded query protocol (Auto Scaling, EC2): `Action=...&Tags.member.1.Key=...`. */

export type Params = URLSearchParams;

/** Members of a list parameter: `prefix.1.`, `prefix.2.`, ... (the index order AWS uses). */
export function members(p: Params, prefix: string): string[] {
  const found = new Set<number>();
  const re = new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.(\\d+)(\\.|$)`);
  for (const k of p.keys()) {
    const m = re.exec(k);
    if (m) found.add(Number(m[1]));
  }
  return [...found].sort((a, b) => a - b).map((i) => `${prefix}.${i}`);
}

export interface TagParam {
  key: string;
  value: string;
}

/** Tags under `prefix` (e.g. `Tags.member` or `TagSpecification.1.Tag`). */
export function tags(p: Params, prefix: string): TagParam[] {
  return members(p, prefix).map((m) => ({ key: p.get(`${m}.Key`) ?? '', value: p.get(`${m}.Value`) ?? '' }));
}

export function intParam(p: Params, name: string): number | undefined {
  const v = p.get(name);
  return v === null || v === '' ? undefined : Number(v);
}
