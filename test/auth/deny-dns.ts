// Import first in every unit test file of test/auth: any real DNS query (node:dns lookup,
// resolve*, Resolver methods, callback or promise API) throws, so a test that forgot to pass
// its zone-map resolver fails loudly instead of asking the network.
import dns from 'node:dns';
import dnsPromises from 'node:dns/promises';
import { syncBuiltinESMExports } from 'node:module';

/** Thrown by every guarded node:dns function. */
export class RealDnsDenied extends Error {
  readonly code = 'ERR_TEST_REAL_DNS';
}


function deny(what: string): never {
  throw new RealDnsDenied(`real DNS lookup in a unit test: ${what} (pass a zone-map resolver)`);
}

// The callback API throws at once; the promise API rejects, as a real failure would.
function patchObject(obj: Record<string, unknown>, label: string, promises: boolean): void {
  for (const name of Object.getOwnPropertyNames(obj)) {
    if (/^(lookup|lookupService|resolve|reverse)/.test(name) && typeof obj[name] === 'function') {
      obj[name] = promises
        ? (...args: unknown[]) => Promise.reject(new RealDnsDenied(`real DNS lookup in a unit test: ${label}.${name}(${String(args[0])})`))
        : (...args: unknown[]) => deny(`${label}.${name}(${String(args[0])})`);
    }
  }
}

function patchPrototype(proto: object | null, label: string, promises: boolean): void {
  for (let p = proto; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    patchObject(p as Record<string, unknown>, label, promises);
  }
}

patchObject(dns as unknown as Record<string, unknown>, 'dns', false);
patchObject(dnsPromises as unknown as Record<string, unknown>, 'dns.promises', true);
patchPrototype(dns.Resolver.prototype, 'dns.Resolver', false);
patchPrototype(dnsPromises.Resolver.prototype, 'dns.promises.Resolver', true);
syncBuiltinESMExports();
