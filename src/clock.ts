/**
 * The service clock for object lifecycles (created/updated, nbf/exp, retention and purge dates, rotation).
 * Tokens use real time: a client's token cache knows only real time. The offset lets an administrator
 * advance time for tests (`coffer debug clock advance 91d`); it is kept in the database so every node shares it.
 */
export interface Clock {
  now(): number;
  offsetMs(): number;
  setOffset(ms: number): void;
}

export function createClock(initialOffsetMs = 0): Clock {
  let offset = initialOffsetMs;
  return {
    now: () => Date.now() + offset,
    offsetMs: () => offset,
    setOffset: (ms) => { offset = ms; },
  };
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `91d`, `12h`, `30m`, `10s` (or a sum like `1d12h`) into milliseconds. */
export function parseDuration(text: string): number {
  const parts = [...text.matchAll(/(\d+)([smhd])/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== text) throw new Error(`invalid duration '${text}' (use e.g. 91d, 12h, 30m)`);
  return parts.reduce((ms, [, n, unit]) => ms + Number(n) * UNITS[unit], 0);
}
