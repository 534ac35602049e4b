// Rendezvous (highest-random-weight) hashing: each (shard, address) pair gets an independent
// pseudo-random score and the highest score wins. Adding a shard to n takes ~1/(n+1) of the
// users (those it now out-scores) and moves nobody else; removing one moves only its own users.
// All 32-bit integer math (Math.imul): no BigInt, no allocation, same answer in every process.

/** FNV-1a 32-bit over the UTF-16 code units of `s`, continuing from `h`. */
export function fnv1a(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's 32-bit finalizer: a bijection with full avalanche, so `fmix32(h ^ seed)` for
 * different seeds behaves like independent random values (FNV alone mixes its last bytes poorly). */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The per-shard seed mixed into every score. */
export function shardSeed(shardId: string): number {
  return fmix32(fnv1a(shardId));
}

/** Hash of a normalized address `local@domain`, computed without building the string. */
export function addressHash(local: string, domain: string): number {
  let h = fnv1a(local);
  h ^= 0x40; // '@'
  h = Math.imul(h, 0x01000193);
  return fnv1a(domain, h >>> 0);
}

/**
 * Pick the shard with the highest score for an address hash. `seeds[i]` is `shardSeed` of
 * `indexes[i]`; lists are sorted by shard id, so equal scores (1 in 2^32) go to the lowest id.
 * Returns an element of `indexes`.
 */
export function rendezvous(h: number, indexes: Int32Array | number[], seeds: Uint32Array | number[]): number {
  let best = indexes[0];
  let bestScore = -1;
  for (let i = 0; i < indexes.length; i++) {
    const score = fmix32(h ^ seeds[i]);
    if (score > bestScore) {
      bestScore = score;
      best = indexes[i];
    }
  }
  return best;
}
