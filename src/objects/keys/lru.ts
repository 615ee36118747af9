/**
 * A bounded map that forgets the least recently used entry first (a Map iterates in insertion order, so re-inserting
 * on each hit keeps the oldest entry first). Used for parsed private keys, which are costly to rebuild and immutable
 * per key version.
 */
export function createLru<K, V>(capacity: number) {
  const entries = new Map<K, V>();
  return {
    get(key: K): V | undefined {
      const value = entries.get(key);
      if (value !== undefined) {
        entries.delete(key);
        entries.set(key, value);
      }
      return value;
    },
    set(key: K, value: V) {
      entries.delete(key);
      entries.set(key, value);
      if (entries.size > capacity) entries.delete(entries.keys().next().value!);
    },
    get size() {
      return entries.size;
    },
  };
}
