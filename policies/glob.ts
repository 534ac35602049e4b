// Local-part patterns: `*` matches any run of characters (also none), `?` exactly one; every
// other character is literal. Small enough that two patterns can be checked statically for a
// common match, which is how overlapping rules are found before any mail flows.

/** Compile a glob to an anchored RegExp. */
export function globToRegExp(glob: string, caseSensitive: boolean): RegExp {
  let src = '^';
  for (const ch of glob) {
    if (ch === '*') src += '.*';
    else if (ch === '?') src += '.';
    else src += ch.replace(/[\\^$.|+()[\]{}/-]/g, '\\$&');
  }
  return new RegExp(src + '$', caseSensitive ? 's' : 'is');
}

/**
 * True when some string matches both globs (intersection of two regular languages, decided by
 * walking both patterns together; memoized, O(|a|·|b|)).
 */
export function globsOverlap(a: string, b: string, caseSensitive: boolean): boolean {
  const p = caseSensitive ? [...a] : [...a.toLowerCase()];
  const q = caseSensitive ? [...b] : [...b.toLowerCase()];
  const memo = new Map<number, boolean>();
  const go = (i: number, j: number): boolean => {
    const key = i * (q.length + 1) + j;
    const seen = memo.get(key);
    if (seen !== undefined) return seen;
    memo.set(key, false); // cycles cannot occur (each step advances), but be safe
    let r: boolean;
    if (i === p.length && j === q.length) r = true;
    else if (i < p.length && p[i] === '*') r = go(i + 1, j) || (j < q.length && go(i, j + 1));
    else if (j < q.length && q[j] === '*') r = go(i, j + 1) || (i < p.length && go(i + 1, j));
    else if (i === p.length || j === q.length) r = false;
    else r = (p[i] === '?' || q[j] === '?' || p[i] === q[j]) && go(i + 1, j + 1);
    memo.set(key, r);
    return r;
  };
  return go(0, 0);
}
