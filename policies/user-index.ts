import { addressHash } from './hash.ts';

/** Key length byte meaning "compare against `locals[row]`" (key longer than 254 or not Latin-1). */
const LONG = 255;

/**
 * The user directory of one domain: normalized local parts in an open-addressing hash table
 * keyed by the same 32-bit address hash rendezvous placement uses. route() probes it straight
 * from the raw address (folding case and stopping at the subaddress separator as it hashes), so
 * a lookup allocates nothing.
 *
 * A random lookup in a million users is bound by cache misses, not arithmetic, so the layout
 * keeps them to two: a slot is two adjacent Int32 lanes `[record offset + 1 (0 = empty), hash]`,
 * and the record is `row (4 bytes LE), length (1 byte), Latin-1 key bytes` in one byte arena.
 * Cost per user: one string, 16 bytes of slots, ~5 + key-length arena bytes.
 */
export class UserIndex {
  /** Normalized local parts; the position is the row number. */
  readonly locals: string[] = [];
  /** Domain name the hashes include. */
  readonly domain: string;
  private slots: Int32Array;
  /** Slot count - 1 (a power of two minus one). */
  private mask: number;
  private arena: Uint8Array;
  private arenaUsed = 0;

  constructor(domain: string, expected = 16) {
    this.domain = domain;
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.slots = new Int32Array(cap * 2);
    this.mask = cap - 1;
    this.arena = new Uint8Array(Math.max(256, expected * 16));
  }

  /** Number of users. */
  get size(): number {
    return this.locals.length;
  }

  /** Row of a normalized local part whose address hash is `h`, or -1. */
  find(local: string, h: number): number {
    const { slots, mask, locals, arena } = this;
    const hv = h | 0;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const o = slots[2 * i] - 1;
      if (o < 0) return -1;
      if (slots[2 * i + 1] !== hv) continue;
      const row = arena[o] | (arena[o + 1] << 8) | (arena[o + 2] << 16) | (arena[o + 3] << 24);
      if (locals[row] === local) return row;
    }
  }

  /**
   * Row of the user whose normalized local part equals `address[0, end)` after ASCII case
   * folding (when `fold`), or -1. The caller hashed that range into `h`. No allocation.
   */
  probe(address: string, end: number, h: number, fold: boolean): number {
    const { slots, mask, arena } = this;
    const hv = h | 0;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const o = slots[2 * i] - 1;
      if (o < 0) return -1;
      if (slots[2 * i + 1] !== hv) continue;
      const len = arena[o + 4];
      if (len === LONG) {
        const row = arena[o] | (arena[o + 1] << 8) | (arena[o + 2] << 16) | (arena[o + 3] << 24);
        if (sameFolded(address, end, fold, this.locals[row])) return row;
        continue;
      }
      if (len !== end) continue;
      const base = o + 5;
      let k = 0;
      for (; k < end; k++) {
        let c = address.charCodeAt(k);
        if (fold && c >= 65 && c <= 90) c += 32;
        if (c !== arena[base + k]) break;
      }
      if (k === end) return arena[o] | (arena[o + 1] << 8) | (arena[o + 2] << 16) | (arena[o + 3] << 24);
    }
  }

  /** Add a user not yet present (check with {@link find}); returns its row. */
  add(local: string, h: number): number {
    if ((this.locals.length + 1) * 4 > this.slots.length) this.grow();
    const row = this.locals.length;
    this.locals.push(local);
    let latin1 = local.length < LONG;
    for (let k = 0; k < local.length && latin1; k++) latin1 = local.charCodeAt(k) <= 0xff;
    const len = latin1 ? local.length : 0;
    if (this.arenaUsed + 5 + len > this.arena.length) {
      const bigger = new Uint8Array(Math.max(this.arena.length * 2, this.arenaUsed + 5 + len));
      bigger.set(this.arena.subarray(0, this.arenaUsed));
      this.arena = bigger;
    }
    const a = this.arena;
    const o = this.arenaUsed;
    a[o] = row;
    a[o + 1] = row >>> 8;
    a[o + 2] = row >>> 16;
    a[o + 3] = row >>> 24;
    a[o + 4] = latin1 ? len : LONG;
    for (let k = 0; k < len; k++) a[o + 5 + k] = local.charCodeAt(k);
    this.arenaUsed = o + 5 + len;
    this.insert(o, h);
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

  private insert(offset: number, h: number): void {
    const { slots, mask } = this;
    let i = h & mask;
    while (slots[2 * i] !== 0) i = (i + 1) & mask;
    slots[2 * i] = offset + 1;
    slots[2 * i + 1] = h;
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Int32Array(old.length * 2);
    this.mask = old.length - 1;
    for (let i = 0; i < old.length; i += 2) if (old[i] !== 0) this.insert(old[i] - 1, old[i + 1] >>> 0);
  }
}

/** `address[0, end)`, ASCII-folded when `fold`, equals `local` (the slow compare). */
function sameFolded(address: string, end: number, fold: boolean, local: string): boolean {
  if (local.length !== end) return false;
  for (let k = 0; k < end; k++) {
    let c = address.charCodeAt(k);
    if (fold && c >= 65 && c <= 90) c += 32;
    if (c !== local.charCodeAt(k)) return false;
  }
  return true;
}
