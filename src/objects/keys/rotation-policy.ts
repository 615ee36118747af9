import { badParameter } from '../../http/errors.js';

/**
 * A key's rotation policy: lifetime actions (Rotate or Notify) triggered a duration after the version was created or
 * before it expires, and the expiry given to versions the policy creates. Durations are ISO-8601 (`P90D`, `P1Y2M`),
 * applied in calendar terms (months and years are calendar months and years, in UTC).
 */
export type ActionType = 'Rotate' | 'Notify';

export interface LifetimeAction {
  trigger: { timeAfterCreate?: string; timeBeforeExpiry?: string };
  action: { type: ActionType };
}

export interface RotationPolicyInput {
  lifetimeActions?: { trigger?: { timeAfterCreate?: string; timeBeforeExpiry?: string }; action?: { type?: string } }[];
  attributes?: { expiryTime?: string };
}

/** The stored form (JSON in the key's metadata); times in seconds. */
export interface StoredRotationPolicy {
  lifetimeActions: LifetimeAction[];
  expiryTime?: string;
  created: number;
  updated: number;
}

const DURATION = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/;
const DAY_MS = 86_400_000;

function parts(iso: string) {
  const m = DURATION.exec(iso);
  if (!m || iso === 'P' || iso.endsWith('T')) return undefined;
  const [y, mo, w, d, h, mi, s] = m.slice(1).map((x) => Number(x ?? 0));
  return { y, mo, w, d, h, mi, s };
}

/** `ms` moved by an ISO-8601 duration (`sign` -1 moves backwards). */
export function addIsoDuration(ms: number, iso: string, sign: 1 | -1 = 1): number {
  const p = parts(iso);
  if (!p) throw new Error(`invalid ISO-8601 duration: ${iso}`);
  const date = new Date(ms);
  date.setUTCFullYear(date.getUTCFullYear() + sign * p.y, date.getUTCMonth() + sign * p.mo);
  return date.getTime() + sign * ((p.w * 7 + p.d) * DAY_MS + p.h * 3_600_000 + p.mi * 60_000 + p.s * 1000);
}

/** Roughly how long a duration is, for Azure's minimums (a month counted as 28 days: the shortest). */
const minimumDays = (iso: string) => {
  const p = parts(iso)!;
  return p.y * 365 + p.mo * 28 + p.w * 7 + p.d + (p.h * 3600 + p.mi * 60 + p.s) / 86_400;
};

function checkDuration(field: string, iso: string | undefined, minDays: number) {
  if (iso === undefined) return;
  if (typeof iso !== 'string' || !parts(iso)) throw badParameter(`Invalid ISO-8601 duration for ${field}: ${String(iso)}.`);
  if (minimumDays(iso) < minDays) throw badParameter(`${field} must be at least ${minDays} days; got ${iso}.`);
}

/** Validates a policy as Azure does; the result is what the key stores. */
export function parsePolicy(input: RotationPolicyInput): Omit<StoredRotationPolicy, 'created' | 'updated'> {
  const expiryTime = input.attributes?.expiryTime ?? undefined;
  checkDuration('expiryTime', expiryTime, 28);
  const lifetimeActions = (input.lifetimeActions ?? []).map((a): LifetimeAction => {
    const type = String(a.action?.type ?? '').toLowerCase();
    if (type !== 'rotate' && type !== 'notify') throw badParameter(`Invalid lifetime action type: ${String(a.action?.type)}. Valid types are Rotate and Notify.`);
    const { timeAfterCreate, timeBeforeExpiry } = a.trigger ?? {};
    if ((timeAfterCreate === undefined) === (timeBeforeExpiry === undefined)) {
      throw badParameter('A lifetime action must have exactly one trigger: timeAfterCreate or timeBeforeExpiry.');
    }
    checkDuration('timeAfterCreate', timeAfterCreate, 7);
    checkDuration('timeBeforeExpiry', timeBeforeExpiry, 7);
    if (type === 'notify' && timeAfterCreate !== undefined) throw badParameter('A Notify action can only be triggered by timeBeforeExpiry.');
    if (timeBeforeExpiry !== undefined && expiryTime !== undefined && minimumDays(timeBeforeExpiry) >= minimumDays(expiryTime)) {
      throw badParameter('timeBeforeExpiry must be shorter than the policy expiryTime.');
    }
    return {
      trigger: timeAfterCreate !== undefined ? { timeAfterCreate } : { timeBeforeExpiry },
      action: { type: type === 'rotate' ? 'Rotate' : 'Notify' },
    };
  });
  for (const type of ['Rotate', 'Notify']) {
    if (lifetimeActions.filter((a) => a.action.type === type).length > 1) throw badParameter(`A policy may have at most one ${type} action.`);
  }
  return { lifetimeActions, ...(expiryTime ? { expiryTime } : {}) };
}

/** Azure's answer for a key without a policy: notify 30 days before expiry. */
const DEFAULT_ACTIONS: LifetimeAction[] = [{ trigger: { timeBeforeExpiry: 'P30D' }, action: { type: 'Notify' } }];

export function policyResponse(id: string, policy: StoredRotationPolicy | undefined) {
  if (!policy) return { id, lifetimeActions: DEFAULT_ACTIONS, attributes: {} };
  return {
    id,
    lifetimeActions: policy.lifetimeActions,
    attributes: { expiryTime: policy.expiryTime, created: policy.created, updated: policy.updated },
  };
}

/** Whether the policy's Rotate action is due for a version created at `createdMs` that expires at `exp` (seconds). */
export function isRotationDue(policy: StoredRotationPolicy | undefined, createdMs: number, exp: number | undefined, now: number): boolean {
  const rotate = policy?.lifetimeActions.find((a) => a.action.type === 'Rotate');
  if (!rotate) return false;
  const { timeAfterCreate, timeBeforeExpiry } = rotate.trigger;
  if (timeAfterCreate) return now >= addIsoDuration(createdMs, timeAfterCreate);
  return exp !== undefined && timeBeforeExpiry !== undefined && now >= addIsoDuration(exp * 1000, timeBeforeExpiry, -1);
}
