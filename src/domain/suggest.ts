// "Did you mean ...?" for unknown keys and names: the most common mistake in a
// hand-written YAML file is a typo. Shared by the compose and kompoxops.yml
// loaders so both suggest the same way.

/**
 * The candidate closest to `word` by edit distance (case-insensitive), if it is
 * plausibly a typo: within 2 edits, or a third of the candidate's length for
 * longer ones. Ties go to the alphabetically first candidate, so the
 * suggestion does not depend on the order candidates are listed in.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = levenshtein(word.toLowerCase(), c.toLowerCase());
    if (d < bestD || (d === bestD && best !== undefined && c < best)) {
      best = c;
      bestD = d;
    }
  }
  if (best === undefined) return undefined;
  return bestD <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}
