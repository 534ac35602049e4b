import { MailmeshError } from './errors.ts';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parse a positive duration such as `90s`, `10m`, `1h`, `1h30m` or `7d` into milliseconds.
 * Zero, negative and unit-less values are refused: a TTL of 0 is always an operator mistake.
 *
 * @example parseDuration('1h30m') // 5_400_000
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  const re = /(\d+)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(trimmed); m; m = re.exec(trimmed)) {
    total += Number(m[1]) * UNITS[m[2]];
    consumed = re.lastIndex;
  }
  if (trimmed.length === 0 || consumed !== trimmed.length) {
    throw new MailmeshError('ERR_BAD_DURATION', `invalid duration "${text}": use a number with a unit, e.g. 90s, 10m, 1h, 7d`);
  }
  if (total <= 0) {
    throw new MailmeshError('ERR_BAD_DURATION', `invalid duration "${text}": must be greater than zero`);
  }
  return total;
}

/** Format milliseconds compactly (`1h30m`), the inverse of {@link parseDuration} for whole seconds. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  let s = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  return parts.join('');
}
