import { WINDOW_MS } from './budgets.js';

/**
 * Weighted use of one budget over the last 10 seconds (the budget is given per call: it can change with the profile's
 * node share). Admission is all-or-nothing and a refused request leaves no
 * trace (Azure does not count throttled requests). Entries are kept in arrival order, so expiry is from the front.
 */
export function createSlidingWindow() {
  const entries: { at: number; cost: number }[] = [];
  let used = 0;

  function expire(now: number) {
    while (entries.length && entries[0].at + WINDOW_MS <= now) used -= entries.shift()!.cost;
    if (!entries.length) used = 0; // no float drift once the window empties
  }

  return {
    used(now: number) {
      expire(now);
      return used;
    },
    /** Whether `cost` fits now. A single request larger than the whole budget fits an empty window, or it never could. */
    fits(now: number, cost: number, budget: number) {
      expire(now);
      return used + cost <= budget || entries.length === 0;
    },
    add(now: number, cost: number) {
      entries.push({ at: now, cost });
      used += cost;
    },
    /** Milliseconds until enough of the window expires for `cost` to fit: the honest Retry-After. */
    msUntilFits(now: number, cost: number, budget: number) {
      expire(now);
      let remaining = used;
      for (const entry of entries) {
        remaining -= entry.cost;
        if (remaining + cost <= budget || remaining <= 1e-9) return entry.at + WINDOW_MS - now;
      }
      return 0;
    },
  };
}

export type SlidingWindow = ReturnType<typeof createSlidingWindow>;
