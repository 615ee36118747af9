import type { Generated } from 'kysely';

/** Times are epoch milliseconds; booleans are 0/1; JSON documents are text — portable across SQLite and PostgreSQL. */
export interface Database {
  settings: { key: string; value: string };
  principals: {
    object_id: string;
    tenant_id: string;
    kind: string;
    app_id: string | null;
    display_name: string;
    enabled: number;
    created_at: number;
  };
  client_secrets: {
    key_id: string;
    principal_id: string;
    secret_hash: string;
    hint: string;
    expires_at: number | null;
    created_at: number;
  };
  signing_keys: {
    kid: string;
    sealed_private_key: Buffer;
    public_jwk: string;
    created_at: number;
    retired_at: number | null;
  };
  vaults: {
    id: string;
    name: string;
    name_key: string;
    tenant_id: string;
    subscription_id: string;
    resource_group: string;
    location: string;
    properties: string;
    tags: string;
    wrapped_data_key: Buffer;
    created_at: number;
    deleted_at: number | null;
    scheduled_purge_at: number | null;
  };
  object_names: {
    vault_id: string;
    collection: string;
    name_key: string;
    name: string;
    current_seq: number | null;
    deleted_at: number | null;
    scheduled_purge_at: number | null;
  };
  object_versions: {
    seq: Generated<number>;
    vault_id: string;
    collection: string;
    name_key: string;
    version: string;
    payload: Buffer;
    meta: string;
    created_at: number;
    updated_at: number;
  };
  leases: { name: string; holder: string; expires_at: number };
  /** A vault's certificate contacts (JSON array) and issuers (one JSON record each); they go with the vault. */
  certificate_contacts: { vault_id: string; contacts: string };
  certificate_issuers: { vault_id: string; name_key: string; record: string };
  /** Lifetime-action notices already sent, one per certificate version and kind. */
  certificate_notices: { vault_id: string; name_key: string; version: string; kind: string; sent_at: number };
  /** One row (id 1): bumped by triggers on every table a gate reads; the gates' caches are valid while it stands still. */
  cache_generation: { id: number; generation: number };
  /** `origin`: the node that wrote the record; `resource_key`: the vault it concerns, lower-cased (for diagnostic settings). */
  audit_events: { seq: Generated<number>; time: number; record: string; origin: string | null; resource_key: string | null };
  resource_groups: { subscription_id: string; name_key: string; name: string; location: string; tags: string; created_at: number };
  /** Custom role definitions (built-ins live in code); `document` is the definition's ARM properties as JSON. */
  role_definitions: { id: string; scope: string; role_name: string; document: string; created_at: number };
  role_assignments: {
    id: string;
    scope: string;
    /** The scope lower-cased: ARM resource ids compare case-insensitively. */
    scope_key: string;
    role_definition_id: string;
    principal_id: string;
    principal_type: string;
    created_by: string | null;
    created_at: number;
  };
}
