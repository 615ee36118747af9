import type { Gate } from '../../pipeline/pipeline.js';
import type { Caller, RequestContext } from '../../pipeline/context.js';
import { forbidden } from '../../http/errors.js';
import { ipRuleSet, normaliseAddress } from './ip-rules.js';
import type { PrivateEndpointArrival } from './private-endpoint-listeners.js';

/**
 * Whether a caller is a trusted service, which a vault's `bypass: AzureServices` lets through its firewall: a principal
 * the deployment administrator marked so (`coffer keyvault trusted-service add`).
 */
export type TrustedServiceCheck = (caller: Caller) => boolean | Promise<boolean>;

/**
 * The address prefixes (CIDR) of the subnets a vault's `virtualNetworkRules` name, by subnet resource id: the
 * subnets of `coffer network vnet`, so a virtual-network rule admits exactly the clients whose source address is in it.
 */
export type SubnetPrefixes = (subnetIds: string[]) => Promise<string[]>;

/**
 * Private link: the private-endpoint address a request arrived on (undefined: the public listener), and the vault (its
 * internal id) the endpoint at an address connects.
 */
export interface PrivateLink {
  arrivedAt: PrivateEndpointArrival;
  vaultAt(address: string): Promise<string | undefined>;
}

/** How Key Vault names the caller and the vault in firewall denials. */
const describe = (ctx: RequestContext) => {
  const c = ctx.caller!.claims;
  return {
    caller: `Caller: appid=${c.appid ?? c.azp ?? ''};oid=${c.oid};iss=${c.iss}`,
    vault: `Vault: ${ctx.vault!.name};location=${ctx.vault!.location}`,
  };
};

/**
 * The data plane's network step, after identity and authorization (so strangers learn nothing about the firewall):
 * private link first (a request that arrived on a private endpoint of this vault passes; on another vault's endpoint
 * it is refused), then public network access, then the vault's `networkAcls` on the connection's real source
 * address — never a header, which a client could forge. The control plane is not firewalled, as in Azure. The vault's
 * settings and what its rules refer to (subnets, trusted services, private endpoints) come through caches that the
 * database's cache generation validates on every request, so a change takes effect on every node at the next request.
 */
export function createNetworkGate(deps: { isTrustedService?: TrustedServiceCheck; subnetPrefixes?: SubnetPrefixes; privateLink?: PrivateLink } = {}): Gate {
  const isTrustedService: TrustedServiceCheck = deps.isTrustedService ?? (() => false);
  return {
    name: 'network',
    appliesTo: (ctx) => ctx.plane === 'vault',
    async check(req, ctx) {
      const { properties } = ctx.vault!;
      const endpointAddress = deps.privateLink?.arrivedAt(req);
      if (endpointAddress !== undefined) {
        if (await deps.privateLink!.vaultAt(endpointAddress) === ctx.vault!.id) return;
        const { caller, vault } = describe(ctx);
        throw forbidden([`The private endpoint this request arrived on (address: ${endpointAddress}) is not connected to this vault.`, caller, vault].join('\r\n'), 'ForbiddenByConnection');
      }
      const acls = properties.networkAcls;
      const address = normaliseAddress(req.socket.remoteAddress ?? '');
      // Asked only when a rule would refuse the request (bypass defaults to AzureServices, as in Azure).
      const trusted = async () => acls?.bypass !== 'None' && await isTrustedService(ctx.caller!);
      if (properties.publicNetworkAccess === 'Disabled') {
        if (await trusted()) return;
        const { caller, vault } = describe(ctx);
        throw forbidden(['Public network access is disabled and request is not from a trusted service nor via an approved private link.', caller, vault].join('\r\n'), 'ForbiddenByConnection');
      }
      if (!acls || (acls.defaultAction ?? 'Allow') === 'Allow') return;
      if (ipRuleSet(acls.ipRules ?? []).admits(address)) return;
      const subnetIds = (acls.virtualNetworkRules ?? []).map((rule) => rule.id);
      if (subnetIds.length && deps.subnetPrefixes) {
        const prefixes = await deps.subnetPrefixes(subnetIds);
        if (ipRuleSet(prefixes.map((value) => ({ value }))).admits(address)) return;
      }
      if (await trusted()) return;
      const { caller, vault } = describe(ctx);
      throw forbidden(['Client address is not authorized and caller is not a trusted service.', `Client address: ${address}`, caller, vault].join('\r\n'), 'ForbiddenByFirewall');
    },
  };
}
