// Address normalization for placement. RFC 5321 §2.4: the domain is case-insensitive; the local
// part MAY be case-sensitive, but treating it case-insensitively is what users expect, so that is
// the default and a domain can opt out. RFC 5233: `local+detail` is delivered to `local`.

/** The two halves of an address; `local` and `domain` are not normalized yet. Null if there is
 * no `@`, or either side is empty. The last `@` splits, as a quoted local part may contain one. */
export function splitAddress(address: string): { local: string; domain: string } | null {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return null;
  return { local: address.slice(0, at), domain: address.slice(at + 1) };
}

/** Lower-case a domain and drop one trailing root dot (`Example.COM.` → `example.com`). */
export function normalizeDomain(domain: string): string {
  const d = domain.toLowerCase();
  return d.endsWith('.') ? d.slice(0, -1) : d;
}

/** Normalize a local part under a domain's settings: strip the subaddress, fold case unless the
 * domain is case-sensitive. */
export function normalizeLocal(local: string, caseSensitive: boolean, separator: string): string {
  let l = local;
  if (separator !== '') {
    const i = l.indexOf(separator);
    if (i >= 0) l = l.slice(0, i);
  }
  return caseSensitive ? l : l.toLowerCase();
}
