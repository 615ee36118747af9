import type { FastifyRequest } from 'fastify';
import type { Vault } from '../control-plane/vaults.js';
import type { Endpoints } from '../endpoints.js';
import type { Keyring } from '../crypto/envelope.js';
import { EnvelopeError } from '../crypto/envelope.js';
import { badParameter } from '../http/errors.js';
import type { DeletedObject, Page, StoredVersion, VersionMeta } from './store.js';
import { recoveryLevel } from './recovery.js';

/** Helpers shared by the object collections' services and routes, so each family only writes what is its own. */

export const MAX_TAGS = 15;
export const MAX_PAGE = 25;

export type ListQuery = { maxresults?: string; $skiptoken?: string; 'api-version': string };

export const seconds = (ms: number) => Math.floor(ms / 1000);

/** The page size a list request asked for (Azure's bounds: 1..25, default 25). */
export function pageSize(query: ListQuery): number {
  if (query.maxresults === undefined) return MAX_PAGE;
  const n = Number(query.maxresults);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) {
    throw badParameter(`invalid maxresults parameter: ${query.maxresults}. The value must be between 1 and ${MAX_PAGE}.`);
  }
  return n;
}

/** Builds the `nextLink` of a list page: the same path on the vault's URL, with the continuation token. */
export const nextLinkFor = (endpoints: Endpoints) => (req: FastifyRequest, path: string, size: number) => (token: string) =>
  `${endpoints.vaultUrl(req.coffer.vault!.name)}${path}?api-version=${encodeURIComponent(req.coffer.apiVersion!)}&maxresults=${size}&$skiptoken=${token}`;

export function checkTags(tags?: Record<string, string>) {
  if (!tags) return;
  const entries = Object.entries(tags);
  if (entries.length > MAX_TAGS) throw badParameter(`Too many tags. The maximum number of tags is ${MAX_TAGS}.`);
  for (const [k, v] of entries) {
    if (k.length > 512 || v.length > 256) throw badParameter('Tag names may be at most 512 and tag values at most 256 characters long.');
  }
}

export interface AttributesInput {
  enabled?: boolean;
  nbf?: number | null;
  exp?: number | null;
}

/** Applies an attributes patch: an explicit null clears nbf/exp, an absent field keeps the prior value. */
export function applyAttributes(meta: VersionMeta, a: AttributesInput | undefined): VersionMeta {
  if (a?.enabled !== undefined) meta.enabled = a.enabled;
  if (a && 'nbf' in a) meta.nbf = a.nbf ?? undefined;
  if (a && 'exp' in a) meta.exp = a.exp ?? undefined;
  return meta;
}

/** The attributes every object version reports. */
export const versionAttributes = (vault: Vault, v: StoredVersion) => ({
  enabled: v.meta.enabled,
  nbf: v.meta.nbf,
  exp: v.meta.exp,
  created: seconds(v.created),
  updated: seconds(v.updated),
  recoveryLevel: recoveryLevel(vault.properties),
  recoverableDays: vault.properties.softDeleteRetentionInDays,
});

/** The fields a deleted object adds; `deletedPath` is e.g. `deletedsecrets`. */
export const deletedObjectFields = (vaultUrl: string, deletedPath: string, d: DeletedObject) => ({
  recoveryId: `${vaultUrl}/${deletedPath}/${d.name}`,
  deletedDate: seconds(d.deletedAt),
  scheduledPurgeDate: seconds(d.scheduledPurgeAt),
});

export const listPage = <T, R>(p: Page<T>, map: (t: T) => R, nextLink: (token: string) => string) => ({
  value: p.items.map(map),
  nextLink: p.next ? nextLink(p.next) : null,
});

export interface BackupDocument {
  name: string;
  versions: { version: string; meta: VersionMeta; created: number; updated: number; payload: string }[];
}

/**
 * A collection's backup blob: every version with its payload, sealed with the deployment's backup key
 * (integrity-protected), behind a prefix naming the collection so one family's blob cannot restore into another.
 */
export function createBackupCodec(keyring: Keyring, collection: string) {
  const prefix = Buffer.from(`coffer-${collection.replace(/s$/, '')}-backup-v1.`);
  return {
    seal(doc: BackupDocument): string {
      const sealed = keyring.sealSystem('backup', collection, Buffer.from(JSON.stringify(doc), 'utf8'));
      return Buffer.concat([prefix, sealed]).toString('base64url');
    },
    /** The document, or a 400 BadParameter for anything that is not an intact blob of this collection. */
    open(blob: string): BackupDocument {
      try {
        const raw = Buffer.from(blob, 'base64url');
        if (!raw.subarray(0, prefix.length).equals(prefix)) throw new EnvelopeError('not a backup of this collection');
        return JSON.parse(keyring.openSystem('backup', collection, raw.subarray(prefix.length)).toString('utf8'));
      } catch (err) {
        if (err instanceof EnvelopeError || err instanceof SyntaxError) {
          throw badParameter('Backup blob contains invalid or corrupt version.');
        }
        throw err;
      }
    },
  };
}
