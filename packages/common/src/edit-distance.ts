/**
 * Edit distance between short strings, and the nearest of a few candidates: what the "did you
 * mean" hints of the job file (instance types) and of the settings (config keys) are built on.
 */

/** The Levenshtein distance: the fewest insertions, deletions and substitutions that turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, sub));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/**
 * The candidate nearest to `word`, when it is fewer than `below` edits away; the first of the
 * nearest on a tie. `norm` is applied to both sides before they are compared.
 */
export function closest<T extends string>(
  word: string,
  candidates: Iterable<T>,
  below: number,
  norm: (s: string) => string = (s) => s,
): T | undefined {
  const w = norm(word);
  let best: T | undefined;
  let bestDistance = below;
  for (const c of candidates) {
    const d = editDistance(w, norm(c));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}
