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

/** Pattern code of `*` in a {@link compileGlob} program. */
export const GLOB_STAR = -1;
/** Pattern code of `?` in a {@link compileGlob} program. */
export const GLOB_ONE = -2;

/**
 * Compile an ASCII glob for {@link globMatch}: char codes (lower-cased when not `caseSensitive`),
 * {@link GLOB_STAR} for `*` and {@link GLOB_ONE} for `?`. Null when the glob has a non-ASCII
 * character: those keep using {@link globToRegExp}, whose case-insensitive matching of non-ASCII
 * text is the reference.
 *
 * @example compileGlob('NOC-*', false) // Int32Array [110, 111, 99, 45, -1]
 */
export function compileGlob(glob: string, caseSensitive: boolean): Int32Array | null {
  const prog = new Int32Array(glob.length);
  for (let i = 0; i < glob.length; i++) {
    let c = glob.charCodeAt(i);
    if (c > 127) return null;
    if (c === 42) c = GLOB_STAR;
    else if (c === 63) c = GLOB_ONE;
    else if (!caseSensitive && c >= 65 && c <= 90) c += 32;
    prog[i] = c;
  }
  return prog;
}

/**
 * Does `s[0, end)` match a {@link compileGlob} program? For ASCII text this agrees with
 * `globToRegExp(glob, caseSensitive).test(s.slice(0, end))` when `fold === !caseSensitive` (the
 * `i` flag canonicalizes ASCII by its letters only), without slicing or lower-casing a string.
 * Greedy with backtracking to the last `*`: O(|s|·|glob|) worst case, one pass for `noc-*`.
 */
export function globMatch(prog: Int32Array, s: string, end: number, fold: boolean): boolean {
  const m = prog.length;
  let p = 0;
  let i = 0;
  let star = -1;
  let mark = 0;
  while (i < end) {
    if (p < m) {
      const pc = prog[p];
      if (pc === GLOB_STAR) {
        star = p++;
        mark = i;
        continue;
      }
      let c = s.charCodeAt(i);
      if (fold && c >= 65 && c <= 90) c += 32;
      if (pc === c || pc === GLOB_ONE) {
        p++;
        i++;
        continue;
      }
    }
    if (star < 0) return false;
    // Let the last `*` take one more character and retry from there.
    p = star + 1;
    i = ++mark;
  }
  while (p < m && prog[p] === GLOB_STAR) p++;
  return p === m;
}
