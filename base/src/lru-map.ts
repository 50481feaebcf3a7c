/**
 * A map with a bound: at most `maxEntries` entries and, when `weigh` is
 * given, at most `maxWeight` in total; past either, the least recently used
 * entries go. `get` counts as a use. For caches whose keys come from callers
 * (layers, blobs), so that no caller can grow them without end.
 */
export class LruMap<K, V> {
  readonly #map = new Map<K, { value: V; weight: number }>();
  readonly #maxEntries: number;
  readonly #maxWeight: number;
  readonly #weigh: (value: V) => number;
  #weight = 0;

  constructor(init: { maxEntries: number; maxWeight?: number; weigh?: (value: V) => number }) {
    this.#maxEntries = init.maxEntries;
    this.#maxWeight = init.maxWeight ?? Infinity;
    this.#weigh = init.weigh ?? (() => 0);
  }

  get size(): number {
    return this.#map.size;
  }

  /** Total weight of the entries held. */
  get weight(): number {
    return this.#weight;
  }

  get(key: K): V | undefined {
    const e = this.#map.get(key);
    if (!e) return undefined;
    this.#map.delete(key);
    this.#map.set(key, e);
    return e.value;
  }

  /** The values, least recently used first (not counted as uses). */
  *values(): IterableIterator<V> {
    for (const e of this.#map.values()) yield e.value;
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  /** Set `key` as the most recently used, then drop the least recently used past the bounds (never the entry just set). */
  set(key: K, value: V): this {
    this.delete(key);
    const weight = this.#weigh(value);
    this.#map.set(key, { value, weight });
    this.#weight += weight;
    for (const k of this.#map.keys()) {
      if (this.#map.size <= this.#maxEntries && this.#weight <= this.#maxWeight) break;
      if (k === key) break;
      this.delete(k);
    }
    return this;
  }

  delete(key: K): boolean {
    const e = this.#map.get(key);
    if (!e) return false;
    this.#map.delete(key);
    this.#weight -= e.weight;
    return true;
  }
}
