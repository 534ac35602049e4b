import { addressHash } from './hash.ts';

/**
 * The user directory of one domain: normalized local parts in an open-addressing hash table
 * keyed by the same 32-bit address hash rendezvous placement uses. route() probes it straight
 * from the raw address (folding case and stopping at the subaddress separator as it hashes), so
 * a lookup allocates nothing; a million users cost ~one string plus 16 bytes each.
 */
export class UserIndex {
  /** Normalized local parts; the position is the row number. */
  readonly locals: string[] = [];
  /** Domain name the hashes include. */
  readonly domain: string;
  private table: Int32Array;
  private slotHash: Uint32Array;
  private mask: number;

  constructor(domain: string, expected = 16) {
    this.domain = domain;
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.table = new Int32Array(cap);
    this.slotHash = new Uint32Array(cap);
    this.mask = cap - 1;
  }

  /** Number of users. */
  get size(): number {
    return this.locals.length;
  }

  /** Row of a normalized local part whose address hash is `h`, or -1. */
  find(local: string, h: number): number {
    const { table, slotHash, mask, locals } = this;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const r = table[i];
      if (r === 0) return -1;
      if (slotHash[i] === h && locals[r - 1] === local) return r - 1;
    }
  }

  /**
   * Row of the user whose normalized local part equals `address[0, end)` after ASCII case
   * folding (when `fold`), or -1. The caller hashed that range into `h`. No allocation.
   */
  probe(address: string, end: number, h: number, fold: boolean): number {
    const { table, slotHash, mask, locals } = this;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const r = table[i];
      if (r === 0) return -1;
      if (slotHash[i] !== h) continue;
      const l = locals[r - 1];
      if (l.length !== end) continue;
      let same = true;
      for (let k = 0; k < end; k++) {
        let c = address.charCodeAt(k);
        if (fold && c >= 65 && c <= 90) c += 32;
        if (c !== l.charCodeAt(k)) {
          same = false;
          break;
        }
      }
      if (same) return r - 1;
    }
  }

  /** Add a user not yet present (check with {@link find}); returns its row. */
  add(local: string, h: number): number {
    if ((this.locals.length + 1) * 2 > this.table.length) this.grow();
    const row = this.locals.length;
    this.locals.push(local);
    this.insert(row, h);
    return row;
  }

  /** Row of a normalized local part, or undefined (Map-like convenience). */
  get(local: string): number | undefined {
    const r = this.find(local, addressHash(local, this.domain));
    return r < 0 ? undefined : r;
  }

  /** True when the normalized local part is listed. */
  has(local: string): boolean {
    return this.get(local) !== undefined;
  }

  /** Normalized local parts in row order. */
  keys(): IterableIterator<string> {
    return this.locals.values();
  }

  private insert(row: number, h: number): void {
    const { table, mask } = this;
    let i = h & mask;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = row + 1;
    this.slotHash[i] = h;
  }

  private grow(): void {
    const oldTable = this.table;
    const oldHash = this.slotHash;
    this.table = new Int32Array(oldTable.length * 2);
    this.slotHash = new Uint32Array(oldTable.length * 2);
    this.mask = this.table.length - 1;
    for (let i = 0; i < oldTable.length; i++) if (oldTable[i] !== 0) this.insert(oldTable[i] - 1, oldHash[i]);
  }
}
