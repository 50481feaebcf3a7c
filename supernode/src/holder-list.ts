/**
 * The ids of a layer's holders in an array, with each one's position:
 * adding, removing and picking one at random are O(1), so a tracker
 * answers "who holds this layer" from a sample of a layer 10,000 hosts
 * hold without walking them all.
 */
export class HolderList {
  readonly #ids: string[] = [];
  readonly #at = new Map<string, number>();

  constructor(ids: Iterable<string> = []) {
    for (const id of ids) this.add(id);
  }

  get size(): number {
    return this.#ids.length;
  }

  add(id: string): void {
    if (this.#at.has(id)) return;
    this.#at.set(id, this.#ids.length);
    this.#ids.push(id);
  }

  /** Removes `id` (the last id takes its place); false when it was not here. */
  delete(id: string): boolean {
    const i = this.#at.get(id);
    if (i === undefined) return false;
    const last = this.#ids.pop()!;
    this.#at.delete(id);
    if (last !== id) {
      this.#ids[i] = last;
      this.#at.set(last, i);
    }
    return true;
  }

  /** The id at position `i` (0 ≤ i < size). */
  at(i: number): string {
    return this.#ids[i]!;
  }

  [Symbol.iterator](): Iterator<string> {
    return this.#ids[Symbol.iterator]();
  }
}
