import net from 'node:net';

/**
 * A client's source address as the firewall sees it: IPv4-mapped IPv6 (`::ffff:127.0.0.5`, what a dual-stack
 * listener reports for IPv4 clients) is the IPv4 address it carries.
 */
export function normaliseAddress(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return mapped ? mapped[1] : address;
}

/**
 * The set of addresses a vault's `ipRules` admit. Each rule is a single IPv4 address or an IPv4 CIDR range, as Key
 * Vault accepts them; a rule that is neither admits nothing (the control plane is where bad rules are refused).
 */
export function ipRuleSet(rules: { value: string }[]) {
  const list = new net.BlockList();
  for (const { value } of rules) {
    const [address, prefix, ...extra] = value.trim().split('/');
    if (extra.length || !net.isIPv4(address)) continue;
    if (prefix === undefined) list.addAddress(address, 'ipv4');
    else if (/^\d{1,2}$/.test(prefix) && Number(prefix) <= 32) list.addSubnet(address, Number(prefix), 'ipv4');
  }
  return { admits: (address: string) => net.isIPv4(normaliseAddress(address)) && list.check(normaliseAddress(address), 'ipv4') };
}
