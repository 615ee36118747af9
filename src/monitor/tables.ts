import type { Generated } from 'kysely';

/** The monitor's tables (migration 0007_monitor). Times are epoch milliseconds; JSON documents are text. */
declare module '../storage/schema.js' {
  interface Database {
    /** Workspaces, storage accounts and event-hub namespaces; `id_key` is the ARM id lower-cased. */
    monitor_resources: {
      id_key: string; type: string; resource_group: string; name: string; location: string; tags: string; properties: string; created_at: number;
    };
    /** `resource_key`: the vault's id lower-cased; `start_seq`: audit records after this one are routed. */
    diagnostic_settings: { id_key: string; resource_key: string; name: string; properties: string; start_seq: number; created_at: number };
    /** Which node delivers the audit records written by `origin` (a node's own, or a dead node's it adopted). */
    audit_origins: { origin: string; holder: string; expires_at: number };
    /** The last audit record of `origin` delivered along `route` (one diagnostic setting's one destination). */
    audit_cursors: { route: string; origin: string; seq: number };
    workspace_records: { seq: Generated<number>; workspace_key: string; time: number; record: string };
  }
}

export {};
