import type { Generated, Kysely } from 'kysely';
import type { Storage } from '../storage/engine.js';
import type { Database } from '../storage/schema.js';

/** The tables of migration 0008_events (times are epoch ms on the service clock unless noted). */
export type EventTables = {
  event_subscriptions: {
    id: string;
    vault_id: string;
    name: string;
    name_key: string;
    /** The subscription's settings as JSON (see SubscriptionSettings). */
    document: string;
    created_at: number;
    updated_at: number;
  };
  /** The outbox: one row per event and subscription, deleted once delivered or dead-lettered. */
  event_deliveries: {
    seq: Generated<number>;
    subscription_id: string;
    /** The event already wrapped in the subscription's schema, as JSON. */
    event: string;
    attempts: number;
    next_attempt_at: number;
    expires_at: number;
    /** Until when (the database's clock, not the service clock) one node's delivery attempt owns the row. */
    claimed_until: number | null;
    last_error: string | null;
    created_at: number;
  };
  event_expiry_notices: {
    vault_id: string;
    collection: string;
    name_key: string;
    version: string;
    kind: string;
    /** The exp the notice was for: a version whose exp is later changed is noticed again for its new date. */
    exp: number;
    fired_at: number;
  };
};

export type EventsDb = Kysely<Database & EventTables>;

/** Coffer's database seen with the event tables (also a transaction's, so events join the caller's transaction). */
export const withEventTables = (db: Kysely<Database>): EventsDb => db.withTables<EventTables>();
export const eventsDb = (storage: Storage): EventsDb => withEventTables(storage.db);
