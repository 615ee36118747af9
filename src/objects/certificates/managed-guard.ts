import type { FastifyInstance, FastifyRequest } from 'fastify';
import { forbidden } from '../../http/errors.js';
import type { CertificatesService } from './service.js';

/**
 * A certificate's key and secret are managed by Key Vault: readable through the keys and secrets APIs, but changed,
 * deleted, recovered or purged only through the certificate. This guard refuses those operations on a managed name
 * with Azure's error, before the keys or secrets service runs, so those services need not know about certificates.
 */
const GUARDED: Record<string, { collection: 'keys' | 'secrets'; verb: string; deleted?: boolean }> = {
  SecretSet: { collection: 'secrets', verb: 'set' },
  SecretUpdate: { collection: 'secrets', verb: 'update' },
  SecretDelete: { collection: 'secrets', verb: 'delete' },
  SecretRecover: { collection: 'secrets', verb: 'recover', deleted: true },
  SecretPurge: { collection: 'secrets', verb: 'purge', deleted: true },
  KeyCreate: { collection: 'keys', verb: 'create' },
  KeyImport: { collection: 'keys', verb: 'import' },
  KeyUpdate: { collection: 'keys', verb: 'update' },
  KeyDelete: { collection: 'keys', verb: 'delete' },
  KeyRotate: { collection: 'keys', verb: 'rotate' },
  KeyRotationPolicySet: { collection: 'keys', verb: 'setrotationpolicy' },
  KeyRecover: { collection: 'keys', verb: 'recover', deleted: true },
  KeyPurge: { collection: 'keys', verb: 'purge', deleted: true },
};

export function installManagedObjectGuard(app: FastifyInstance, deps: { certificates: Pick<CertificatesService, 'isManaged'> }) {
  app.addHook('preHandler', async (req: FastifyRequest) => {
    const guarded = GUARDED[(req.routeOptions.config as { operation?: string } | undefined)?.operation ?? ''];
    const name = (req.params as { name?: string } | undefined)?.name;
    const vault = req.coffer?.vault;
    if (!guarded || !name || !vault) return;
    if (await deps.certificates.isManaged(vault, guarded.collection, name, guarded.deleted ?? false)) {
      throw forbidden(`Operation "${guarded.verb}" is not allowed as this object's lifetime is managed by Key Vault.`,
        guarded.collection === 'secrets' ? 'SecretManagedByKeyVault' : 'KeyManagedByKeyVault');
    }
  });
}
