import type { Registry } from 'prom-client';
import { startHealthServer, type Readiness } from '../../common/health-server.ts';

/** One parsed sample of Prometheus text: `name{labels} value`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parse Prometheus text exposition format (enough for our metrics: no escaped quotes in labels). */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[l[1]] = l[2];
    const v = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

/** The value of one series, or undefined when absent. */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hit = samples.find(
    (s) => s.name === name && Object.keys(labels).length === Object.keys(s.labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return hit?.value;
}

/** Start a health server on loopback port 0 around `registry` and return a scrape function. */
export async function serve(registry: Registry, ready: () => Readiness = () => ({ ok: true, reasons: [] }), live?: () => boolean) {
  const server = await startHealthServer({ host: '127.0.0.1', port: 0, registry, ready, live });
  const base = `http://127.0.0.1:${server.port}`;
  return {
    server,
    base,
    scrape: async (): Promise<Sample[]> => {
      const res = await fetch(`${base}/metrics`);
      if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
      return parseExposition(await res.text());
    },
  };
}
