// `npm run bench [-- --json] [-- --only NAME] [-- --quick]`: runs every bench/*.bench.ts and prints
// each figure with its same-run baseline and ratio. Never part of the pass/fail test run.
import { readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchFn, BenchResult } from './harness.ts';

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? args[onlyIdx + 1] : undefined;
const here = dirname(fileURLToPath(import.meta.url));

const files = readdirSync(here).filter((f) => f.endsWith('.bench.ts') && (!only || f.startsWith(only))).sort();
const results: BenchResult[] = [];
for (const f of files) {
  if (!json) process.stderr.write(`running ${f}…\n`);
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { run: BenchFn };
  try {
    results.push(...(await mod.run({ quick })));
  } catch (err) {
    process.stderr.write(`${f} failed: ${(err as Error).message}\n`);
  }
}

if (json) {
  process.stdout.write(JSON.stringify(results.map(({ name, value, unit, baseline, ratio }) => ({ name, value, unit, baseline, ratio })), null, 2) + '\n');
} else {
  const fmt = (n: number | null) => (n === null ? '-' : n >= 100 ? n.toFixed(0) : n.toFixed(2));
  const rows = results.map((r) => [r.name, `${fmt(r.value)} ${r.unit}`, r.baseline === null ? '-' : `${fmt(r.baseline)} ${r.unit} (${r.baselineName ?? 'baseline'})`, r.ratio === null ? '-' : `${(r.ratio * 100).toFixed(1)}%`, r.goal ?? '']);
  const head = ['benchmark', 'value', 'baseline (same run)', 'ratio', 'goal'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}
