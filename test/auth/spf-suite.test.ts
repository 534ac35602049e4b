// The RFC 7208 (openspf.org 2014.04) SPF test suite, run as data through the project's wiring:
// zone data → zone upstream → createResolver (cache, error mapping) → checkSpf (mailauth spf
// with our RFC 7208 §4.6.4 limits). Every skipped case has a written reason below.
import './deny-dns.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { checkSpf } from '../../sidecar/auth/spf.ts';
import { zoneResolver, type ZoneMap } from './zone-resolver.ts';

interface SuiteTest {
  host: string;
  helo?: string;
  mailfrom?: string;
  result: string | string[];
  spec?: string;
}
interface Scenario {
  description: string;
  tests: Record<string, SuiteTest>;
  zonedata?: ZoneMap;
}

/** Test id → why mailauth's result differs from the suite's expectation (documented deviations). */
export const SKIPPED: Record<string, string> = {};

const text = readFileSync(new URL('../vectors/spf/rfc7208-tests.yml', import.meta.url), 'utf8');
const scenarios = parseAllDocuments(text)
  .map((d) => d.toJS() as Scenario | null)
  .filter((s): s is Scenario => !!s && typeof s === 'object' && !!s.tests);

let passed = 0;
let skipped = 0;
const failed: string[] = [];

for (const sc of scenarios) {
  test(`SPF suite: ${sc.description}`, async (t) => {
    for (const [id, tc] of Object.entries(sc.tests)) {
      await t.test(id, async (st) => {
        if (SKIPPED[id]) {
          skipped++;
          st.skip(SKIPPED[id]);
          return;
        }
        // A fresh resolver per case: the cache must not carry answers across scenarios.
        const { resolver } = zoneResolver(sc.zonedata ?? {}, { unknown: 'nxdomain' });
        const r = await checkSpf({ ip: tc.host, helo: tc.helo, mailFrom: tc.mailfrom, resolver, authservId: 'mx.test' });
        const expected = ([] as string[]).concat(tc.result);
        if (!expected.includes(r.status.result)) failed.push(`${id}: got ${r.status.result}, want ${expected.join('|')}`);
        assert.ok(expected.includes(r.status.result), `${id} (RFC 7208 §${tc.spec}): got ${r.status.result}, expected ${expected.join(' or ')}`);
        passed++;
      });
    }
  });
}

test('SPF suite: summary', () => {
  const total = scenarios.reduce((n, s) => n + Object.keys(s.tests).length, 0);
  console.log(`RFC 7208 suite: ${passed} passed, ${skipped} skipped (with reasons), ${failed.length} failed, ${total} total`);
  if (failed.length) console.log(failed.join('\n'));
  assert.equal(passed + skipped + failed.length, total);
});
