import { sql, type Kysely, type Migration, type MigrationProvider, type CreateTableBuilder } from 'kysely';
import type { StorageDialect } from './engine.js';
import { addGenerationTrigger, createCacheGeneration } from './generation.js';

/**
 * Versioned schema migrations, shared by both engines. The few type names that differ between SQLite and
 * PostgreSQL come from `types(dialect)`; everything else is the same DDL.
 */
function types(dialect: StorageDialect) {
  return dialect === 'postgres'
    ? { blob: 'bytea', int: 'bigint', serial: 'bigserial' }
    : { blob: 'blob', int: 'integer', serial: 'integer' };
}

function migrationsFor(dialect: StorageDialect): Record<string, Migration> {
  const t = types(dialect);
  const serialPk = (name: string) => <T extends string>(tb: CreateTableBuilder<T, any>) =>
    dialect === 'postgres'
      ? tb.addColumn(name, sql.raw(t.serial), (c) => c.primaryKey())
      : tb.addColumn(name, sql.raw(t.serial), (c) => c.primaryKey().autoIncrement());
  const int = sql.raw(t.int);
  const blob = sql.raw(t.blob);

  return {
    '0001_foundation': {
      async up(db: Kysely<any>) {
        await db.schema.createTable('settings')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createTable('principals')
          .addColumn('object_id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('app_id', 'text', (c) => c.unique())
          .addColumn('display_name', 'text', (c) => c.notNull())
          .addColumn('enabled', int, (c) => c.notNull())
          .addColumn('created_at', int, (c) => c.notNull())
          .execute();
        await db.schema.createTable('client_secrets')
          .addColumn('key_id', 'text', (c) => c.primaryKey())
          .addColumn('principal_id', 'text', (c) => c.notNull().references('principals.object_id').onDelete('cascade'))
          .addColumn('secret_hash', 'text', (c) => c.notNull())
          .addColumn('hint', 'text', (c) => c.notNull())
          .addColumn('expires_at', int)
          .addColumn('created_at', int, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('client_secrets_principal').on('client_secrets').column('principal_id').execute();
        await db.schema.createTable('signing_keys')
          .addColumn('kid', 'text', (c) => c.primaryKey())
          .addColumn('sealed_private_key', blob, (c) => c.notNull())
          .addColumn('public_jwk', 'text', (c) => c.notNull())
          .addColumn('created_at', int, (c) => c.notNull())
          .addColumn('retired_at', int)
          .execute();
        await db.schema.createTable('vaults')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('name_key', 'text', (c) => c.notNull().unique())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('subscription_id', 'text', (c) => c.notNull())
          .addColumn('resource_group', 'text', (c) => c.notNull())
          .addColumn('location', 'text', (c) => c.notNull())
          .addColumn('properties', 'text', (c) => c.notNull())
          .addColumn('tags', 'text', (c) => c.notNull())
          .addColumn('wrapped_data_key', blob, (c) => c.notNull())
          .addColumn('created_at', int, (c) => c.notNull())
          .addColumn('deleted_at', int)
          .addColumn('scheduled_purge_at', int)
          .execute();
        await db.schema.createTable('object_names')
          .addColumn('vault_id', 'text', (c) => c.notNull().references('vaults.id').onDelete('cascade'))
          .addColumn('collection', 'text', (c) => c.notNull())
          .addColumn('name_key', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('current_seq', int)
          .addColumn('deleted_at', int)
          .addColumn('scheduled_purge_at', int)
          .addPrimaryKeyConstraint('object_names_pk', ['vault_id', 'collection', 'name_key'])
          .execute();
        await db.schema.createIndex('object_names_purge').on('object_names').column('scheduled_purge_at').execute();
        await db.schema.createTable('object_versions')
          .$call(serialPk('seq'))
          .addColumn('vault_id', 'text', (c) => c.notNull())
          .addColumn('collection', 'text', (c) => c.notNull())
          .addColumn('name_key', 'text', (c) => c.notNull())
          .addColumn('version', 'text', (c) => c.notNull())
          .addColumn('payload', blob, (c) => c.notNull())
          .addColumn('meta', 'text', (c) => c.notNull())
          .addColumn('created_at', int, (c) => c.notNull())
          .addColumn('updated_at', int, (c) => c.notNull())
          .addForeignKeyConstraint('object_versions_name_fk', ['vault_id', 'collection', 'name_key'],
            'object_names', ['vault_id', 'collection', 'name_key'], (fk) => fk.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('object_versions_identity').unique().on('object_versions')
          .columns(['vault_id', 'collection', 'name_key', 'version']).execute();
        await db.schema.createIndex('object_versions_by_name').on('object_versions')
          .columns(['vault_id', 'collection', 'name_key', 'seq']).execute();
        await db.schema.createTable('leases')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('holder', 'text', (c) => c.notNull())
          .addColumn('expires_at', int, (c) => c.notNull())
          .execute();
        await db.schema.createTable('audit_events')
          .$call(serialPk('seq'))
          .addColumn('time', int, (c) => c.notNull())
          .addColumn('record', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('audit_events_time').on('audit_events').column('time').execute();
      },
    },
    '0002_control_plane': {
      async up(db: Kysely<any>) {
        await db.schema.createTable('resource_groups')
          .addColumn('subscription_id', 'text', (c) => c.notNull())
          .addColumn('name_key', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('location', 'text', (c) => c.notNull())
          .addColumn('tags', 'text', (c) => c.notNull())
          .addColumn('created_at', int, (c) => c.notNull())
          .addPrimaryKeyConstraint('resource_groups_pk', ['subscription_id', 'name_key'])
          .execute();
        await db.schema.createTable('role_definitions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('scope', 'text', (c) => c.notNull())
          .addColumn('role_name', 'text', (c) => c.notNull())
          .addColumn('document', 'text', (c) => c.notNull())
          .addColumn('created_at', int, (c) => c.notNull())
          .execute();
        await db.schema.createTable('role_assignments')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('scope', 'text', (c) => c.notNull())
          .addColumn('scope_key', 'text', (c) => c.notNull())
          .addColumn('role_definition_id', 'text', (c) => c.notNull())
          .addColumn('principal_id', 'text', (c) => c.notNull())
          .addColumn('principal_type', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addColumn('created_at', int, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('role_assignments_principal').on('role_assignments').column('principal_id').execute();
        await db.schema.createIndex('role_assignments_identity').unique().on('role_assignments')
          .columns(['scope_key', 'role_definition_id', 'principal_id']).execute();
      },
    },
    '0003_identity': {
      // Users, groups, managed identities and client certificates extend the principals of 0001; the credential
      // generation lets the identity gate refuse tokens minted before a credential was removed or a principal disabled.
      async up(db: Kysely<any>) {
        await db.schema.alterTable('principals').addColumn('user_principal_name', 'text').execute();
        await db.schema.alterTable('principals').addColumn('password_hash', 'text').execute();
        await db.schema.alterTable('principals').addColumn('resource_id', 'text').execute();
        await db.schema.alterTable('principals').addColumn('mail_nickname', 'text').execute();
        await db.schema.alterTable('principals').addColumn('credential_generation', int, (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.createIndex('principals_upn').unique().on('principals').column('user_principal_name').execute();
        await db.schema.createIndex('principals_resource_id').unique().on('principals').column('resource_id').execute();
        await db.schema.createTable('group_members')
          .addColumn('group_id', 'text', (c) => c.notNull().references('principals.object_id').onDelete('cascade'))
          .addColumn('member_id', 'text', (c) => c.notNull().references('principals.object_id').onDelete('cascade'))
          .addPrimaryKeyConstraint('group_members_pk', ['group_id', 'member_id'])
          .execute();
        await db.schema.createIndex('group_members_member').on('group_members').column('member_id').execute();
        await db.schema.createTable('client_certificates')
          .addColumn('key_id', 'text', (c) => c.primaryKey())
          .addColumn('principal_id', 'text', (c) => c.notNull().references('principals.object_id').onDelete('cascade'))
          .addColumn('thumbprint_sha1', 'text', (c) => c.notNull())
          .addColumn('thumbprint_sha256', 'text', (c) => c.notNull())
          .addColumn('certificate_der', blob, (c) => c.notNull())
          .addColumn('expires_at', int)
          .addColumn('created_at', int, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('client_certificates_principal').on('client_certificates').column('principal_id').execute();
        await db.schema.createTable('identity_bindings')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
          .addColumn('principal_id', 'text', (c) => c.notNull().references('principals.object_id').onDelete('cascade'))
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('created_at', int, (c) => c.notNull())
          .addColumn('expires_at', int, (c) => c.notNull())
          .execute();
      },
    },
    '0004_identity_federation': {
      // Federated identity credentials: an app trusts tokens of an external issuer for one subject as client assertions.
      async up(db: Kysely<any>) {
        await db.schema.createTable('federated_credentials')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('principal_id', 'text', (c) => c.notNull().references('principals.object_id').onDelete('cascade'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('issuer', 'text', (c) => c.notNull())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('audiences', 'text', (c) => c.notNull())
          .addColumn('created_at', int, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('federated_credentials_identity').unique().on('federated_credentials').columns(['principal_id', 'name']).execute();
      },
    },
    '0005_identity_trust': {
      // Trusted external issuers whose tokens the data plane accepts, and the mapping of their subjects (oid or sub) to
      // principals; failed password sign-ins (lockout).
      async up(db: Kysely<any>) {
        await db.schema.createTable('trusted_issuers')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('issuer', 'text', (c) => c.notNull().unique())
          .addColumn('jwks_uri', 'text', (c) => c.notNull())
          .addColumn('audience', 'text', (c) => c.notNull())
          .addColumn('created_at', int, (c) => c.notNull())
          .execute();
        await db.schema.createTable('trusted_issuer_subjects')
          .addColumn('issuer_id', 'text', (c) => c.notNull().references('trusted_issuers.id').onDelete('cascade'))
          .addColumn('external_id', 'text', (c) => c.notNull())
          .addColumn('principal_id', 'text', (c) => c.notNull().references('principals.object_id').onDelete('cascade'))
          .addColumn('created_at', int, (c) => c.notNull())
          .addPrimaryKeyConstraint('trusted_issuer_subjects_pk', ['issuer_id', 'external_id'])
          .execute();
        await db.schema.createIndex('trusted_issuer_subjects_principal').on('trusted_issuer_subjects').column('principal_id').execute();
        await db.schema.createTable('sign_in_failures')
          .addColumn('principal_id', 'text', (c) => c.primaryKey().references('principals.object_id').onDelete('cascade'))
          .addColumn('failures', int, (c) => c.notNull())
          .addColumn('locked_until', int)
          .execute();
      },
    },
    '0007_monitor': {
      // Audit routing (diagnostic settings): each audit record names the node that wrote it (`origin`) and the vault
      // it concerns (`resource_key`); each destination keeps a cursor per origin, and origins are leased to one
      // delivering node at a time. Workspaces, storage accounts and event-hub namespaces are ARM resources.
      async up(db: Kysely<any>) {
        await db.schema.alterTable('audit_events').addColumn('origin', 'text').execute();
        await db.schema.alterTable('audit_events').addColumn('resource_key', 'text').execute();
        await db.schema.createIndex('audit_events_routing').on('audit_events').columns(['resource_key', 'origin', 'seq']).execute();
        await db.schema.createTable('monitor_resources')
          .addColumn('id_key', 'text', (c) => c.primaryKey())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('resource_group', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('location', 'text', (c) => c.notNull())
          .addColumn('tags', 'text', (c) => c.notNull())
          .addColumn('properties', 'text', (c) => c.notNull())
          .addColumn('created_at', int, (c) => c.notNull())
          .execute();
        await db.schema.createTable('diagnostic_settings')
          .addColumn('id_key', 'text', (c) => c.primaryKey())
          .addColumn('resource_key', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('properties', 'text', (c) => c.notNull())
          .addColumn('start_seq', int, (c) => c.notNull())
          .addColumn('created_at', int, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('diagnostic_settings_resource').on('diagnostic_settings').column('resource_key').execute();
        await db.schema.createTable('audit_origins')
          .addColumn('origin', 'text', (c) => c.primaryKey())
          .addColumn('holder', 'text', (c) => c.notNull())
          .addColumn('expires_at', int, (c) => c.notNull())
          .execute();
        await db.schema.createTable('audit_cursors')
          .addColumn('route', 'text', (c) => c.notNull())
          .addColumn('origin', 'text', (c) => c.notNull())
          .addColumn('seq', int, (c) => c.notNull())
          .addPrimaryKeyConstraint('audit_cursors_pk', ['route', 'origin'])
          .execute();
        await db.schema.createTable('workspace_records')
          .$call(serialPk('seq'))
          .addColumn('workspace_key', 'text', (c) => c.notNull())
          .addColumn('time', int, (c) => c.notNull())
          .addColumn('record', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('workspace_records_time').on('workspace_records').columns(['workspace_key', 'time']).execute();
      },
    },
    '0008_events': {
      // Event Grid: subscriptions on vaults, the delivery outbox (one row per event and subscription, deleted once
      // delivered or dead-lettered), and the expiry notices already fired (so each fires once per object version).
      async up(db: Kysely<any>) {
        await db.schema.createTable('event_subscriptions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('vault_id', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('name_key', 'text', (c) => c.notNull())
          .addColumn('document', 'text', (c) => c.notNull())
          .addColumn('created_at', int, (c) => c.notNull())
          .addColumn('updated_at', int, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('event_subscriptions_identity').unique().on('event_subscriptions').columns(['vault_id', 'name_key']).execute();
        await db.schema.createTable('event_deliveries')
          .$call(serialPk('seq'))
          .addColumn('subscription_id', 'text', (c) => c.notNull().references('event_subscriptions.id').onDelete('cascade'))
          .addColumn('event', 'text', (c) => c.notNull())
          .addColumn('attempts', int, (c) => c.notNull())
          .addColumn('next_attempt_at', int, (c) => c.notNull())
          .addColumn('expires_at', int, (c) => c.notNull())
          .addColumn('claimed_until', int)
          .addColumn('last_error', 'text')
          .addColumn('created_at', int, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('event_deliveries_due').on('event_deliveries').column('next_attempt_at').execute();
        await db.schema.createTable('event_expiry_notices')
          .addColumn('vault_id', 'text', (c) => c.notNull())
          .addColumn('collection', 'text', (c) => c.notNull())
          .addColumn('name_key', 'text', (c) => c.notNull())
          .addColumn('version', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('exp', int, (c) => c.notNull())
          .addColumn('fired_at', int, (c) => c.notNull())
          .addPrimaryKeyConstraint('event_expiry_notices_pk', ['vault_id', 'collection', 'name_key', 'version', 'kind', 'exp'])
          .execute();
      },
    },
    '0011_cache_generation': {
      // The counter the gates' caches are validated by, bumped by triggers on every table a gate reads (generation.ts).
      async up(db: Kysely<any>) {
        await createCacheGeneration(db, dialect);
      },
    },
    '0006_network': {
      // Virtual networks and subnets (real address ranges a vault's virtual-network rule admits), private endpoints
      // (an address Coffer listens on for one vault) and the principals an administrator marked as trusted services.
      async up(db: Kysely<any>) {
        await db.schema.createTable('virtual_networks')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('subscription_id', 'text', (c) => c.notNull())
          .addColumn('resource_group', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('location', 'text', (c) => c.notNull())
          .addColumn('address_prefixes', 'text', (c) => c.notNull())
          .addColumn('tags', 'text', (c) => c.notNull())
          .addColumn('created_at', int, (c) => c.notNull())
          .execute();
        await db.schema.createTable('subnets')
          .addColumn('vnet_id', 'text', (c) => c.notNull().references('virtual_networks.id').onDelete('cascade'))
          .addColumn('name_key', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('address_prefix', 'text', (c) => c.notNull())
          .addColumn('created_at', int, (c) => c.notNull())
          .addPrimaryKeyConstraint('subnets_pk', ['vnet_id', 'name_key'])
          .execute();
        await db.schema.createTable('private_endpoints')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('subscription_id', 'text', (c) => c.notNull())
          .addColumn('resource_group', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('location', 'text', (c) => c.notNull())
          .addColumn('vault_id', 'text', (c) => c.notNull())
          .addColumn('vault_resource_id', 'text', (c) => c.notNull())
          .addColumn('connection_name', 'text', (c) => c.notNull())
          .addColumn('ip_address', 'text', (c) => c.notNull().unique())
          .addColumn('subnet_id', 'text')
          .addColumn('tags', 'text', (c) => c.notNull())
          .addColumn('created_at', int, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('private_endpoints_vault').on('private_endpoints').column('vault_id').execute();
        await db.schema.createTable('trusted_services')
          .addColumn('principal_id', 'text', (c) => c.primaryKey().references('principals.object_id').onDelete('cascade'))
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('created_at', int, (c) => c.notNull())
          .execute();
      },
    },
    '0010_certificates': {
      // Certificate contacts and issuers belong to their vault and go with it when it is purged (cascade); the
      // notices already sent for a certificate version (each lifetime-action email goes out once per version).
      async up(db: Kysely<any>) {
        const vaultId = (c: any) => c.notNull().references('vaults.id').onDelete('cascade');
        await db.schema.createTable('certificate_contacts')
          .addColumn('vault_id', 'text', (c) => vaultId(c).primaryKey())
          .addColumn('contacts', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createTable('certificate_issuers')
          .addColumn('vault_id', 'text', vaultId)
          .addColumn('name_key', 'text', (c) => c.notNull())
          .addColumn('record', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('certificate_issuers_pk', ['vault_id', 'name_key'])
          .execute();
        await db.schema.createTable('certificate_notices')
          .addColumn('vault_id', 'text', vaultId)
          .addColumn('name_key', 'text', (c) => c.notNull())
          .addColumn('version', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('sent_at', int, (c) => c.notNull())
          .addPrimaryKeyConstraint('certificate_notices_pk', ['vault_id', 'name_key', 'version', 'kind'])
          .execute();
        // Earlier versions kept contacts and issuers in settings under the vault's id: move those of live vaults.
        const vaultIds = new Set((await db.selectFrom('vaults').select('id').execute()).map((v) => v.id as string));
        const rows = await db.selectFrom('settings').select(['key', 'value'])
          .where((eb) => eb.or([eb('key', 'like', 'certificate-contacts:%'), eb('key', 'like', 'certificate-issuers:%')])).execute();
        for (const { key, value } of rows as { key: string; value: string }[]) {
          const [kind, id] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
          if (!vaultIds.has(id)) continue;
          if (kind === 'certificate-contacts' && JSON.parse(value).length) {
            await db.insertInto('certificate_contacts').values({ vault_id: id, contacts: value }).execute();
          }
          if (kind === 'certificate-issuers') {
            for (const [nameKey, record] of Object.entries(JSON.parse(value))) {
              await db.insertInto('certificate_issuers').values({ vault_id: id, name_key: nameKey, record: JSON.stringify(record) }).execute();
            }
          }
        }
        await db.deleteFrom('settings').where((eb) => eb.or([eb('key', 'like', 'certificate-contacts:%'), eb('key', 'like', 'certificate-issuers:%')])).execute();
      },
    },
    '0009_keys': {
      // Jobs that look at every key (automatic rotation, HSM token-object collection) select by collection, which is
      // not a prefix of object_names' primary key (vault_id, collection, name_key): without this index they scanned
      // every secret and certificate name too (60-80 ms with 1M secrets, on the event loop, every scheduler tick).
      async up(db: Kysely<any>) {
        await db.schema.createIndex('object_names_collection').on('object_names').column('collection').execute();
      },
    },
    '0012_event_subscriptions_generation': {
      // Whether a vault has Event Grid subscriptions is cached under the cache generation (every new version asks), so
      // a subscription created, changed or deleted on any node moves the generation like a gate table's change.
      async up(db: Kysely<any>) {
        await addGenerationTrigger(db, dialect, 'event_subscriptions');
      },
    },
  };
}

export function migrationProvider(dialect: StorageDialect): MigrationProvider {
  return { getMigrations: async () => migrationsFor(dialect) };
}
