/**
 * What each data-plane operation needs, in each authorization model: the RBAC data action and the access-policy
 * permission (collection + permission name, as the vault spec's permission enums spell them).
 */
export type Collection = 'secrets' | 'keys' | 'certificates';

export interface OperationRequirement {
  dataAction: string;
  collection: Collection;
  /** The access-policy permission, lower-case. */
  permission: string;
}

const KV = 'Microsoft.KeyVault/vaults';
const req = (collection: Collection, action: string, permission: string): OperationRequirement =>
  ({ dataAction: `${KV}/${action}`, collection, permission });

const OPERATIONS: Record<string, OperationRequirement> = {
  SecretSet: req('secrets', 'secrets/setSecret/action', 'set'),
  SecretGet: req('secrets', 'secrets/getSecret/action', 'get'),
  SecretUpdate: req('secrets', 'secrets/update/action', 'set'),
  SecretList: req('secrets', 'secrets/readMetadata/action', 'list'),
  SecretListVersions: req('secrets', 'secrets/readMetadata/action', 'list'),
  SecretDelete: req('secrets', 'secrets/delete', 'delete'),
  SecretListDeleted: req('secrets', 'secrets/readMetadata/action', 'list'),
  SecretGetDeleted: req('secrets', 'secrets/readMetadata/action', 'get'),
  SecretRecover: req('secrets', 'secrets/recover/action', 'recover'),
  SecretPurge: req('secrets', 'secrets/purge/action', 'purge'),
  SecretBackup: req('secrets', 'secrets/backup/action', 'backup'),
  SecretRestore: req('secrets', 'secrets/restore/action', 'restore'),

  KeyCreate: req('keys', 'keys/create/action', 'create'),
  KeyImport: req('keys', 'keys/import/action', 'import'),
  KeyGet: req('keys', 'keys/read', 'get'),
  KeyList: req('keys', 'keys/read', 'list'),
  KeyListVersions: req('keys', 'keys/read', 'list'),
  KeyUpdate: req('keys', 'keys/update/action', 'update'),
  KeyDelete: req('keys', 'keys/delete', 'delete'),
  KeyListDeleted: req('keys', 'keys/read', 'list'),
  KeyGetDeleted: req('keys', 'keys/read', 'get'),
  KeyRecover: req('keys', 'keys/recover/action', 'recover'),
  KeyPurge: req('keys', 'keys/purge/action', 'purge'),
  KeyBackup: req('keys', 'keys/backup/action', 'backup'),
  KeyRestore: req('keys', 'keys/restore/action', 'restore'),
  KeyEncrypt: req('keys', 'keys/encrypt/action', 'encrypt'),
  KeyDecrypt: req('keys', 'keys/decrypt/action', 'decrypt'),
  KeyWrap: req('keys', 'keys/wrap/action', 'wrapkey'),
  KeyUnwrap: req('keys', 'keys/unwrap/action', 'unwrapkey'),
  KeySign: req('keys', 'keys/sign/action', 'sign'),
  KeyVerify: req('keys', 'keys/verify/action', 'verify'),
  KeyRelease: req('keys', 'keys/release/action', 'release'),
  KeyRotate: req('keys', 'keys/rotate/action', 'rotate'),
  KeyRotationPolicyGet: req('keys', 'keyrotationpolicies/read', 'getrotationpolicy'),
  KeyRotationPolicySet: req('keys', 'keyrotationpolicies/write', 'setrotationpolicy'),

  CertificateCreate: req('certificates', 'certificates/create/action', 'create'),
  CertificateImport: req('certificates', 'certificates/import/action', 'import'),
  CertificateGet: req('certificates', 'certificates/read', 'get'),
  CertificateList: req('certificates', 'certificates/read', 'list'),
  CertificateListVersions: req('certificates', 'certificates/read', 'list'),
  CertificateUpdate: req('certificates', 'certificates/update/action', 'update'),
  CertificateDelete: req('certificates', 'certificates/delete', 'delete'),
  CertificateListDeleted: req('certificates', 'certificates/read', 'list'),
  CertificateGetDeleted: req('certificates', 'certificates/read', 'get'),
  CertificateRecover: req('certificates', 'certificates/recover/action', 'recover'),
  CertificatePurge: req('certificates', 'certificates/purge/action', 'purge'),
  CertificateBackup: req('certificates', 'certificates/backup/action', 'backup'),
  CertificateRestore: req('certificates', 'certificates/restore/action', 'restore'),
  CertificatePolicyGet: req('certificates', 'certificates/read', 'get'),
  CertificatePolicyUpdate: req('certificates', 'certificates/update/action', 'update'),
  CertificateOperationGet: req('certificates', 'certificates/read', 'get'),
  CertificateOperationUpdate: req('certificates', 'certificates/update/action', 'update'),
  CertificateOperationDelete: req('certificates', 'certificates/delete', 'delete'),
  CertificateMerge: req('certificates', 'certificates/create/action', 'create'),
  CertificateContactsGet: req('certificates', 'certificatecontacts/write', 'managecontacts'),
  CertificateContactsSet: req('certificates', 'certificatecontacts/write', 'managecontacts'),
  CertificateContactsDelete: req('certificates', 'certificatecontacts/write', 'managecontacts'),
  CertificateIssuerList: req('certificates', 'certificatecas/read', 'listissuers'),
  CertificateIssuerGet: req('certificates', 'certificatecas/read', 'getissuers'),
  CertificateIssuerSet: req('certificates', 'certificatecas/write', 'setissuers'),
  CertificateIssuerUpdate: req('certificates', 'certificatecas/write', 'setissuers'),
  CertificateIssuerDelete: req('certificates', 'certificatecas/delete', 'deleteissuers'),
};

/**
 * The requirement of a data-plane operation. Operations not yet in the table are named as their own data action,
 * so only a wildcard grant (Key Vault Administrator) or an access policy's `all` admits them — never a narrow role.
 */
export function requirementFor(operation: string): OperationRequirement {
  const known = OPERATIONS[operation];
  if (known) return known;
  const collection: Collection = operation.startsWith('Key') ? 'keys' : operation.startsWith('Certificate') ? 'certificates' : 'secrets';
  return { dataAction: `${KV}/${collection}/${operation}/action`, collection, permission: operation.toLowerCase() };
}

/** Access-policy permission values per collection, as the vault spec enumerates them (lower-cased). */
export const ACCESS_POLICY_PERMISSIONS: Record<Collection | 'storage', string[]> = {
  secrets: ['all', 'get', 'list', 'set', 'delete', 'backup', 'restore', 'recover', 'purge'],
  keys: ['all', 'encrypt', 'decrypt', 'wrapkey', 'unwrapkey', 'sign', 'verify', 'get', 'list', 'create', 'update', 'import',
    'delete', 'backup', 'restore', 'recover', 'purge', 'release', 'rotate', 'getrotationpolicy', 'setrotationpolicy'],
  certificates: ['all', 'get', 'list', 'delete', 'create', 'import', 'update', 'managecontacts', 'getissuers', 'listissuers',
    'setissuers', 'deleteissuers', 'manageissuers', 'recover', 'purge', 'backup', 'restore'],
  storage: ['all', 'get', 'list', 'delete', 'set', 'update', 'regeneratekey', 'recover', 'purge', 'backup', 'restore',
    'setsas', 'listsas', 'getsas', 'deletesas'],
};
