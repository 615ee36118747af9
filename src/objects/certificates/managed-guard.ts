import type { FastifyInstance, FastifyRequest, preHandlerHookHandler } from 'fastify';
import { forbidden } from '../../http/errors.js';
import { StoreError } from '../store.js';
import type { CertificatesService } from './service.js';

/**
 * A certificate's key and secret are managed by Key Vault: readable through the keys and secrets APIs, but changed,
 * deleted, recovered or purged only through the certificate.
 *
 * Adding a version (secret set, key create and import) is refused by the store itself, inside the write, where it
 * reads the current version under the name's lock anyway: exact under concurrency and free (`refusedAsManaged`
 * gives the store's refusal Azure's shape). The other operations are refused by this guard before the keys or
 * secrets service runs, so those services need not know about certificates.
 */
const GUARDED: Record<string, { collection: 'keys' | 'secrets'; verb: string; deleted?: boolean }> = {
  SecretUpdate: { collection: 'secrets', verb: 'update' },
  SecretDelete: { collection: 'secrets', verb: 'delete' },
  SecretRecover: { collection: 'secrets', verb: 'recover', deleted: true },
  SecretPurge: { collection: 'secrets', verb: 'purge', deleted: true },
  KeyUpdate: { collection: 'keys', verb: 'update' },
  KeyDelete: { collection: 'keys', verb: 'delete' },
  KeyRotate: { collection: 'keys', verb: 'rotate' },
  KeyRotationPolicySet: { collection: 'keys', verb: 'setrotationpolicy' },
  KeyRecover: { collection: 'keys', verb: 'recover', deleted: true },
  KeyPurge: { collection: 'keys', verb: 'purge', deleted: true },
};

/** Azure's refusal of `verb` on a certificate's managed key or secret. */
export const managedByKeyVault = (collection: 'keys' | 'secrets', verb: string) =>
  forbidden(`Operation "${verb}" is not allowed as this object's lifetime is managed by Key Vault.`,
    collection === 'secrets' ? 'SecretManagedByKeyVault' : 'KeyManagedByKeyVault');

/** The store's refusal to add a version over a managed one, as Azure's 403 for `verb`; any other error unchanged. */
export const refusedAsManaged = (err: unknown, collection: 'keys' | 'secrets', verb: string): unknown =>
  (err instanceof StoreError && err.reason === 'ManagedByKeyVault' ? managedByKeyVault(collection, verb) : err);

/**
 * Adds the guard to the routes of the guarded operations only (other requests, secret GET among them, do not run it).
 * It must be installed before those routes are registered.
 */
export function installManagedObjectGuard(app: FastifyInstance, deps: { certificates: Pick<CertificatesService, 'isManaged'> }) {
  app.addHook('onRoute', (route) => {
    const guarded = GUARDED[(route.config as { operation?: string } | undefined)?.operation ?? ''];
    if (!guarded) return;
    const guard: preHandlerHookHandler = async function (req: FastifyRequest) {
      const name = (req.params as { name?: string } | undefined)?.name;
      const vault = req.coffer?.vault;
      if (!name || !vault) return;
      if (await deps.certificates.isManaged(vault, guarded.collection, name, guarded.deleted ?? false)) {
        throw managedByKeyVault(guarded.collection, guarded.verb);
      }
    };
    const existing = route.preHandler;
    route.preHandler = existing === undefined ? [guard] : [...(Array.isArray(existing) ? existing : [existing]), guard];
  });
}
