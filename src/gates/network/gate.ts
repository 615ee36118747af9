import type { Gate } from '../../pipeline/pipeline.js';
import type { Caller, RequestContext } from '../../pipeline/context.js';
import { forbidden } from '../../http/errors.js';
import { ipRuleSet, normaliseAddress } from './ip-rules.js';

/**
 * Whether a caller is a trusted service, which a vault's `bypass: AzureServices` lets through its firewall.
 * SEAM: the directory has no "trusted service" flag on principals yet, so nothing is trusted today; when an
 * administrator can mark principals, pass a function reading that flag here.
 */
export type TrustedServiceCheck = (caller: Caller) => boolean | Promise<boolean>;

/**
 * The address prefixes (CIDR) of the subnets a vault's `virtualNetworkRules` name, by subnet resource id.
 * SEAM: Coffer stores no virtual networks yet; when `coffer network vnet` lands, pass a reader of its subnets here and
 * a virtual-network rule admits exactly the clients whose source address is in that subnet.
 */
export type SubnetPrefixes = (subnetIds: string[]) => Promise<string[]>;

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
 * public network access, then the vault's `networkAcls` on the connection's real source address — never a header,
 * which a client could forge. The control plane is not firewalled, as in Azure. Vault settings are read afresh on every
 * request (by the vault step), so a rule change takes effect on every node at once.
 */
export function createNetworkGate(deps: { isTrustedService?: TrustedServiceCheck; subnetPrefixes?: SubnetPrefixes } = {}): Gate {
  const isTrustedService: TrustedServiceCheck = deps.isTrustedService ?? (() => false);
  return {
    name: 'network',
    appliesTo: (ctx) => ctx.plane === 'vault',
    async check(req, ctx) {
      const { properties } = ctx.vault!;
      const acls = properties.networkAcls;
      const address = normaliseAddress(req.socket.remoteAddress ?? '');
      const trusted = acls?.bypass !== 'None' && await isTrustedService(ctx.caller!);
      if (properties.publicNetworkAccess === 'Disabled') {
        if (trusted) return;
        const { caller, vault } = describe(ctx);
        throw forbidden(['Public network access is disabled and request is not from a trusted service nor via an approved private link.', caller, vault].join('\r\n'), 'ForbiddenByConnection');
      }
      if (!acls || (acls.defaultAction ?? 'Allow') === 'Allow') return;
      if (ipRuleSet(acls.ipRules ?? []).admits(address) || trusted) return;
      const subnetIds = (acls.virtualNetworkRules ?? []).map((rule) => rule.id);
      if (subnetIds.length && deps.subnetPrefixes) {
        const prefixes = await deps.subnetPrefixes(subnetIds);
        if (ipRuleSet(prefixes.map((value) => ({ value }))).admits(address)) return;
      }
      const { caller, vault } = describe(ctx);
      throw forbidden(['Client address is not authorized and caller is not a trusted service.', `Client address: ${address}`, caller, vault].join('\r\n'), 'ForbiddenByFirewall');
    },
  };
}
