import { KeyVaultError } from '../http/errors.js';

/**
 * The api-versions ARM accepts for each resource provider Coffer serves, oldest first, keyed by namespace and, where
 * one type's list differs from its namespace's, by `namespace/type`. Each list is what Azure publishes for the
 * provider (the versions in azure-rest-api-specs, the reference folder's included: Microsoft.KeyVault 2025-05-01,
 * Microsoft.Authorization 2022-04-01), so every version a released client sends is accepted: az 2.45's SDKs (Key Vault
 * 2022-07-01, resources 2022-09-01, subscriptions 2021-01-01/2022-12-01, diagnostic settings 2021-05-01-preview,
 * metrics 2018-01-01, managed identities 2023-01-31), @azure/arm-keyvault 5 (2026-02-01; its vaults.list reads
 * `/resources` at 2015-11-01) and Coffer's own CLI.
 */
const API_VERSIONS: Record<string, readonly string[]> = {
  // Subscriptions, resource groups and `/resources`, in ARM's own list (2013-03-01 … 2025-04-01).
  'microsoft.resources': [
    '2013-03-01', '2014-01-01', '2014-02-26', '2014-04', '2014-04-01', '2014-04-01-preview', '2015-01-01', '2015-11-01',
    '2016-02-01', '2016-06-01', '2016-07-01', '2016-09-01', '2017-03-01', '2017-05-01', '2017-05-10', '2017-06-01',
    '2017-08-01', '2017-12-01', '2018-01-01', '2018-02-01', '2018-05-01', '2018-06-01', '2018-07-01', '2018-08-01',
    '2018-09-01', '2018-11-01', '2019-03-01', '2019-05-01', '2019-05-10', '2019-06-01', '2019-07-01', '2019-08-01',
    '2019-09-01', '2019-10-01', '2019-11-01', '2020-01-01', '2020-05-01', '2020-06-01', '2020-07-01', '2020-08-01',
    '2020-09-01', '2020-10-01', '2021-01-01', '2021-04-01', '2022-01-01', '2022-03-01-preview', '2022-05-01',
    '2022-06-01', '2022-09-01', '2022-11-01-preview', '2022-12-01', '2023-03-01-preview', '2023-07-01',
    '2023-07-01-preview', '2024-03-01', '2024-06-01-preview', '2024-08-01', '2024-11-01', '2025-04-01',
  ],
  'microsoft.keyvault': [
    '2014-12-19-preview', '2015-06-01', '2016-10-01', '2018-02-14-preview', '2018-02-14', '2019-09-01', '2020-04-01-preview',
    '2021-04-01-preview', '2021-06-01-preview', '2021-10-01', '2021-11-01-preview', '2022-02-01-preview', '2022-07-01',
    '2022-11-01', '2023-02-01', '2023-07-01', '2023-08-01-preview', '2024-04-01-preview', '2024-11-01',
    '2024-12-01-preview', '2025-05-01', '2026-02-01',
  ],
  'microsoft.authorization/roleassignments': [
    '2014-04-01-preview', '2014-07-01-preview', '2014-10-01-preview', '2015-05-01-preview', '2015-06-01', '2015-07-01',
    '2016-07-01', '2017-05-01', '2017-09-01', '2017-10-01-preview', '2018-01-01-preview', '2018-07-01', '2018-09-01-preview',
    '2018-12-01-preview', '2019-04-01-preview', '2020-03-01-preview', '2020-04-01-preview', '2020-08-01-preview',
    '2020-10-01-preview', '2021-04-01-preview', '2022-01-01-preview', '2022-04-01', '2022-05-01-preview',
  ],
  'microsoft.authorization/roledefinitions': [
    '2014-04-01-preview', '2014-07-01-preview', '2014-10-01-preview', '2015-05-01-preview', '2015-06-01', '2015-07-01',
    '2016-07-01', '2017-05-01', '2017-09-01', '2018-01-01-preview', '2018-07-01', '2022-04-01', '2022-05-01-preview',
  ],
  'microsoft.network': [
    '2014-12-01-preview', '2015-05-01-preview', '2015-06-15', '2016-03-30', '2016-06-01', '2016-07-01', '2016-08-01',
    '2016-09-01', '2016-10-01', '2016-11-01', '2016-12-01', '2017-03-01', '2017-04-01', '2017-06-01', '2017-08-01',
    '2017-09-01', '2017-10-01', '2017-11-01', '2018-01-01', '2018-02-01', '2018-03-01', '2018-04-01', '2018-05-01',
    '2018-06-01', '2018-07-01', '2018-08-01', '2018-10-01', '2018-11-01', '2018-12-01', '2019-02-01', '2019-04-01',
    '2019-06-01', '2019-07-01', '2019-08-01', '2019-09-01', '2019-11-01', '2019-12-01', '2020-03-01', '2020-04-01',
    '2020-05-01', '2020-06-01', '2020-07-01', '2020-08-01', '2020-11-01', '2021-02-01', '2021-03-01', '2021-05-01',
    '2021-08-01', '2022-01-01', '2022-05-01', '2022-07-01', '2022-09-01', '2022-11-01', '2023-02-01', '2023-04-01',
    '2023-05-01', '2023-06-01', '2023-09-01', '2023-11-01', '2024-01-01', '2024-03-01', '2024-05-01', '2024-07-01',
    '2024-10-01', '2025-01-01', '2025-03-01', '2025-05-01',
  ],
  'microsoft.insights/diagnosticsettings': ['2015-07-01', '2016-09-01', '2017-05-01-preview', '2020-01-01-preview', '2021-05-01-preview'],
  'microsoft.insights/diagnosticsettingscategories': ['2015-07-01', '2016-09-01', '2017-05-01-preview', '2020-01-01-preview', '2021-05-01-preview'],
  'microsoft.insights/metrics': ['2016-06-01', '2016-09-01', '2017-05-01-preview', '2018-01-01', '2019-07-01', '2021-05-01', '2023-10-01', '2024-02-01'],
  'microsoft.eventgrid': [
    '2017-06-15-preview', '2017-09-15-preview', '2018-01-01', '2018-05-01-preview', '2018-09-15-preview', '2019-01-01',
    '2019-02-01-preview', '2019-06-01', '2020-01-01-preview', '2020-04-01-preview', '2020-06-01', '2020-10-15-preview',
    '2021-06-01-preview', '2021-10-15-preview', '2021-12-01', '2022-06-15', '2023-06-01-preview', '2023-12-15-preview',
    '2024-06-01-preview', '2024-12-15-preview', '2025-02-15',
  ],
  'microsoft.managedidentity': [
    '2015-08-31-preview', '2018-11-30', '2021-09-30-preview', '2022-01-31-preview', '2023-01-31', '2023-07-31-preview',
    '2024-11-30', '2025-01-31-preview',
  ],
  'microsoft.operationalinsights': [
    '2015-03-20', '2015-11-01-preview', '2017-01-01-preview', '2017-03-01', '2017-03-03-preview', '2017-04-26-preview',
    '2020-03-01-preview', '2020-08-01', '2020-10-01', '2021-06-01', '2021-12-01-preview', '2022-10-01', '2023-09-01',
    '2025-02-01', '2025-07-01',
  ],
  'microsoft.storage': [
    '2015-05-01-preview', '2015-06-15', '2016-01-01', '2016-05-01', '2016-12-01', '2017-06-01', '2017-10-01', '2018-02-01',
    '2018-03-01-preview', '2018-07-01', '2018-11-01', '2019-04-01', '2019-06-01', '2020-08-01-preview', '2021-01-01',
    '2021-02-01', '2021-04-01', '2021-05-01', '2021-06-01', '2021-08-01', '2021-09-01', '2022-05-01', '2022-09-01',
    '2023-01-01', '2023-04-01', '2023-05-01', '2024-01-01', '2025-01-01',
  ],
  'microsoft.eventhub': [
    '2014-09-01', '2015-08-01', '2017-04-01', '2018-01-01-preview', '2021-01-01-preview', '2021-06-01-preview', '2021-11-01',
    '2022-01-01-preview', '2022-10-01-preview', '2023-01-01-preview', '2024-01-01', '2024-05-01-preview',
  ],
};

const decodeSegment = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/** The resource provider and type a management path addresses: the last `/providers/{namespace}/…` segment wins. */
export function armTypeOf(path: string): { namespace: string; type: string } {
  const segments = path.split('?')[0].split('/').filter(Boolean).map(decodeSegment);
  const at = segments.map((s) => s.toLowerCase()).lastIndexOf('providers');
  if (at === -1 || at + 1 >= segments.length) {
    // `/subscriptions`, `/subscriptions/{id}`, `…/resourcegroups[/{name}]` and `…/resources` are Microsoft.Resources'.
    const type = segments.length <= 2 ? 'subscriptions' : segments[2].toLowerCase() === 'resourcegroups' ? 'resourceGroups' : segments[2];
    return { namespace: 'Microsoft.Resources', type };
  }
  // ARM names a nested type by its type segments alone: locations/{l}/deletedVaults/{n} is `locations/deletedVaults`.
  const type = segments.slice(at + 2).filter((_, i) => i % 2 === 0).join('/');
  return { namespace: segments[at + 1], type };
}

/** The versions ARM accepts for a namespace and type (the type's own list, else its namespace's), if it knows either. */
export function supportedApiVersions(namespace: string, type: string): readonly string[] | undefined {
  const ns = namespace.toLowerCase();
  return API_VERSIONS[`${ns}/${type.split('/')[0].toLowerCase()}`] ?? API_VERSIONS[ns];
}

/**
 * ARM's api-version rule for a management request: required, and one the addressed provider publishes for the type.
 * An unsupported version is refused as ARM refuses it, which differs by provider: Microsoft.Resources answers
 * InvalidApiVersionParameter (newest first), Microsoft.Authorization InvalidResourceType, and the other providers
 * NoRegisteredProviderFound naming the location (the body's, else the one in the path; Coffer restricts none).
 */
export function checkManagementApiVersion(path: string, given: unknown, body?: unknown) {
  // A repeated parameter reaches the service as one comma-joined value, which is no version ARM knows.
  const version = Array.isArray(given) ? given.join(',') : given;
  if (typeof version !== 'string' || version === '') {
    throw new KeyVaultError(400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.');
  }
  const { namespace, type } = armTypeOf(path);
  const supported = supportedApiVersions(namespace, type) ?? [];
  if (supported.includes(version)) return;
  if (namespace.toLowerCase() === 'microsoft.resources') {
    throw new KeyVaultError(400, 'InvalidApiVersionParameter',
      `The api-version '${version}' is invalid. The supported versions are '${[...supported].reverse().join(',')}'.`);
  }
  if (namespace.toLowerCase() === 'microsoft.authorization') {
    throw new KeyVaultError(400, 'InvalidResourceType',
      `The resource type '${type}' could not be found in the namespace '${namespace}' for api version '${version}'. The supported api-versions are '${supported.join(',')}'.`);
  }
  const bodyLocation = (body as { location?: unknown } | null | undefined)?.location;
  const pathLocation = /\/locations\/([^/?]+)/i.exec(path)?.[1];
  const location = typeof bodyLocation === 'string' && bodyLocation.length <= 64 ? bodyLocation : pathLocation ? decodeSegment(pathLocation) : 'global';
  throw new KeyVaultError(400, 'NoRegisteredProviderFound',
    `No registered resource provider found for location '${location}' and API version '${version}' for type '${type}'. The supported api-versions are '${supported.join(', ')}'. The supported locations are ''.`);
}
