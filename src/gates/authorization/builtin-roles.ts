/**
 * Azure's built-in role definitions that matter to Key Vault, copied from Azure's published definitions
 * (names, GUIDs, actions, notActions, dataActions, notDataActions). Built-ins live in code, not in the database:
 * they are the same in every deployment and can be neither changed nor deleted.
 */
export interface Permission {
  actions: string[];
  notActions: string[];
  dataActions: string[];
  notDataActions: string[];
  /**
   * Azure expresses Key Vault Data Access Administrator's limit as an ABAC condition; Coffer evaluates that one
   * condition natively: role assignments may be written or deleted only for these role definitions.
   */
  assignableRoleIds?: string[];
  condition?: string;
  conditionVersion?: string;
}

export interface RoleDefinitionDocument {
  roleName: string;
  type: 'BuiltInRole' | 'CustomRole';
  description: string;
  assignableScopes: string[];
  permissions: Permission[];
}

export interface BuiltInRole extends RoleDefinitionDocument {
  guid: string;
}

const GENERIC_READS = [
  'Microsoft.Authorization/*/read',
  'Microsoft.Insights/alertRules/*',
  'Microsoft.Resources/deployments/*',
  'Microsoft.Resources/subscriptions/resourceGroups/read',
  'Microsoft.Support/*',
];
const KEY_VAULT_READS = [
  ...GENERIC_READS,
  'Microsoft.KeyVault/checkNameAvailability/read',
  'Microsoft.KeyVault/deletedVaults/read',
  'Microsoft.KeyVault/locations/*/read',
  'Microsoft.KeyVault/vaults/*/read',
  'Microsoft.KeyVault/operations/read',
];
const RBAC_ONLY = " Only works for key vaults that use the 'Azure role-based access control' permission model.";

const permission = (p: Partial<Permission>): Permission => ({ actions: [], notActions: [], dataActions: [], notDataActions: [], ...p });

const role = (guid: string, roleName: string, description: string, p: Partial<Permission>): BuiltInRole => ({
  guid, roleName, type: 'BuiltInRole', description, assignableScopes: ['/'], permissions: [permission(p)],
});

export const ROLE_IDS = {
  owner: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
  userAccessAdministrator: '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
  keyVaultAdministrator: '00482a5a-887f-4fb3-b363-3b7fe8e74483',
  keyVaultCertificatesOfficer: 'a4417e6f-fecd-4de8-b567-7b0420556985',
  keyVaultCertificateUser: 'db79e9a7-68ee-4b58-9aeb-b90e7c24fcba',
  keyVaultCryptoOfficer: '14b46e9e-c2b7-41b4-b07b-48a6ebf60603',
  keyVaultCryptoUser: '12338af0-0e69-4776-bea7-57ae8d297424',
  keyVaultCryptoServiceEncryptionUser: 'e147488a-f6f5-4113-8e2d-b22465e65bf6',
  keyVaultCryptoServiceReleaseUser: '08bbd89e-9f13-488c-ac41-acfcb10c90ab',
  keyVaultReader: '21090545-7ca7-4776-b22c-e363652d74d2',
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6',
  keyVaultDataAccessAdministrator: '8b54135c-b56d-4d72-a534-26097cfdc8d8',
  keyVaultContributor: 'f25e0fa2-a7c8-4377-a976-54943a77a395',
} as const;

/** The roles Key Vault Data Access Administrator may assign (its ABAC condition's GUID list). */
const DATA_ACCESS_ADMIN_ASSIGNABLE = [
  ROLE_IDS.keyVaultAdministrator, ROLE_IDS.keyVaultCertificatesOfficer, ROLE_IDS.keyVaultCryptoOfficer,
  ROLE_IDS.keyVaultCryptoServiceEncryptionUser, ROLE_IDS.keyVaultCryptoUser, ROLE_IDS.keyVaultReader,
  ROLE_IDS.keyVaultSecretsOfficer, ROLE_IDS.keyVaultSecretsUser,
];
const guidSet = DATA_ACCESS_ADMIN_ASSIGNABLE.join(', ');

export const BUILT_IN_ROLES: BuiltInRole[] = [
  role(ROLE_IDS.owner, 'Owner', 'Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.', { actions: ['*'] }),
  role(ROLE_IDS.contributor, 'Contributor', 'Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.', {
    actions: ['*'],
    notActions: [
      'Microsoft.Authorization/*/Delete',
      'Microsoft.Authorization/*/Write',
      'Microsoft.Authorization/elevateAccess/Action',
      'Microsoft.Blueprint/blueprintAssignments/write',
      'Microsoft.Blueprint/blueprintAssignments/delete',
      'Microsoft.Compute/galleries/share/action',
      'Microsoft.Purview/consents/write',
      'Microsoft.Purview/consents/delete',
      'Microsoft.Resources/deploymentStacks/manageDenySetting/action',
      'Microsoft.Subscription/cancel/action',
      'Microsoft.Subscription/enable/action',
    ],
  }),
  role(ROLE_IDS.reader, 'Reader', 'View all resources, but does not allow you to make any changes.', { actions: ['*/read'] }),
  role(ROLE_IDS.userAccessAdministrator, 'User Access Administrator', 'Lets you manage user access to Azure resources.', {
    actions: ['*/read', 'Microsoft.Authorization/*', 'Microsoft.Support/*'],
  }),
  role(ROLE_IDS.keyVaultAdministrator, 'Key Vault Administrator', `Perform all data plane operations on a key vault and all objects in it, including certificates, keys, and secrets. Cannot manage key vault resources or manage role assignments.${RBAC_ONLY}`, {
    actions: KEY_VAULT_READS, dataActions: ['Microsoft.KeyVault/vaults/*'],
  }),
  role(ROLE_IDS.keyVaultCertificatesOfficer, 'Key Vault Certificates Officer', `Perform any action on the certificates of a key vault, except manage permissions.${RBAC_ONLY}`, {
    actions: KEY_VAULT_READS,
    dataActions: ['Microsoft.KeyVault/vaults/certificatecas/*', 'Microsoft.KeyVault/vaults/certificates/*', 'Microsoft.KeyVault/vaults/certificatecontacts/write'],
  }),
  role(ROLE_IDS.keyVaultCertificateUser, 'Key Vault Certificate User', `Read certificate contents.${RBAC_ONLY}`, {
    dataActions: [
      'Microsoft.KeyVault/vaults/certificates/read',
      'Microsoft.KeyVault/vaults/secrets/getSecret/action',
      'Microsoft.KeyVault/vaults/secrets/readMetadata/action',
      'Microsoft.KeyVault/vaults/keys/read',
    ],
  }),
  role(ROLE_IDS.keyVaultCryptoOfficer, 'Key Vault Crypto Officer', `Perform any action on the keys of a key vault, except manage permissions.${RBAC_ONLY}`, {
    actions: KEY_VAULT_READS, dataActions: ['Microsoft.KeyVault/vaults/keys/*', 'Microsoft.KeyVault/vaults/keyrotationpolicies/*'],
  }),
  role(ROLE_IDS.keyVaultCryptoUser, 'Key Vault Crypto User', `Perform cryptographic operations using keys.${RBAC_ONLY}`, {
    dataActions: [
      'Microsoft.KeyVault/vaults/keys/read',
      'Microsoft.KeyVault/vaults/keys/update/action',
      'Microsoft.KeyVault/vaults/keys/backup/action',
      'Microsoft.KeyVault/vaults/keys/encrypt/action',
      'Microsoft.KeyVault/vaults/keys/decrypt/action',
      'Microsoft.KeyVault/vaults/keys/wrap/action',
      'Microsoft.KeyVault/vaults/keys/unwrap/action',
      'Microsoft.KeyVault/vaults/keys/sign/action',
      'Microsoft.KeyVault/vaults/keys/verify/action',
    ],
  }),
  role(ROLE_IDS.keyVaultCryptoServiceEncryptionUser, 'Key Vault Crypto Service Encryption User', `Read metadata of keys and perform wrap/unwrap operations.${RBAC_ONLY}`, {
    actions: ['Microsoft.EventGrid/eventSubscriptions/write', 'Microsoft.EventGrid/eventSubscriptions/read', 'Microsoft.EventGrid/eventSubscriptions/delete'],
    dataActions: ['Microsoft.KeyVault/vaults/keys/read', 'Microsoft.KeyVault/vaults/keys/wrap/action', 'Microsoft.KeyVault/vaults/keys/unwrap/action'],
  }),
  role(ROLE_IDS.keyVaultCryptoServiceReleaseUser, 'Key Vault Crypto Service Release User', `Release keys.${RBAC_ONLY}`, {
    dataActions: ['Microsoft.KeyVault/vaults/keys/release/action'],
  }),
  role(ROLE_IDS.keyVaultReader, 'Key Vault Reader', `Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive values such as secret contents or key material.${RBAC_ONLY}`, {
    actions: KEY_VAULT_READS, dataActions: ['Microsoft.KeyVault/vaults/*/read', 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'],
  }),
  role(ROLE_IDS.keyVaultSecretsOfficer, 'Key Vault Secrets Officer', `Perform any action on the secrets of a key vault, except manage permissions.${RBAC_ONLY}`, {
    actions: KEY_VAULT_READS, dataActions: ['Microsoft.KeyVault/vaults/secrets/*'],
  }),
  role(ROLE_IDS.keyVaultSecretsUser, 'Key Vault Secrets User', `Read secret contents.${RBAC_ONLY}`, {
    dataActions: ['Microsoft.KeyVault/vaults/secrets/getSecret/action', 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'],
  }),
  role(ROLE_IDS.keyVaultDataAccessAdministrator, 'Key Vault Data Access Administrator', 'Manage access to Azure Key Vault by adding or removing role assignments for the Key Vault Administrator, Key Vault Certificates Officer, Key Vault Crypto Officer, Key Vault Crypto Service Encryption User, Key Vault Crypto User, Key Vault Reader, Key Vault Secrets Officer, or Key Vault Secrets User roles. Includes an ABAC condition to constrain role assignments.', {
    actions: [
      'Microsoft.Authorization/roleAssignments/write',
      'Microsoft.Authorization/roleAssignments/delete',
      'Microsoft.Authorization/*/read',
      'Microsoft.Resources/deployments/*',
      'Microsoft.Resources/subscriptions/resourceGroups/read',
      'Microsoft.Resources/subscriptions/read',
      'Microsoft.Management/managementGroups/read',
      'Microsoft.Resources/deployments/*',
      'Microsoft.Support/*',
      'Microsoft.KeyVault/vaults/*/read',
    ],
    assignableRoleIds: DATA_ACCESS_ADMIN_ASSIGNABLE,
    conditionVersion: '2.0',
    condition: `((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{${guidSet}})) AND ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{${guidSet}}))`,
  }),
  role(ROLE_IDS.keyVaultContributor, 'Key Vault Contributor', 'Lets you manage key vaults, but not access to them.', {
    actions: ['Microsoft.Authorization/*/read', 'Microsoft.Insights/alertRules/*', 'Microsoft.KeyVault/*', 'Microsoft.Resources/deployments/*', 'Microsoft.Resources/subscriptions/resourceGroups/read', 'Microsoft.Support/*'],
    notActions: ['Microsoft.KeyVault/locations/deletedVaults/purge/action', 'Microsoft.KeyVault/hsmPools/*', 'Microsoft.KeyVault/managedHsms/*'],
  }),
];
