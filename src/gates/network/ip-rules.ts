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

/** An IPv4 range: its first address as a 32-bit number and its prefix length. */
export interface Ipv4Range { first: number; prefix: number }

const toNumber = (address: string) => address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
const toDotted = (n: number) => [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
const size = (prefix: number) => 2 ** (32 - prefix);

/**
 * `a.b.c.d` (a /32) or `a.b.c.d/n` as an IPv4 range, or undefined when it is neither. `canonical` is the range
 * written with its host bits cleared (what Azure requires of address prefixes).
 */
export function parseIpv4Range(value: string): (Ipv4Range & { canonical: string; hostBitsSet: boolean }) | undefined {
  const [address, prefixText, ...extra] = value.split('/');
  if (extra.length || !net.isIPv4(address)) return undefined;
  if (prefixText !== undefined && !/^\d{1,2}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? 32 : Number(prefixText);
  if (prefix > 32) return undefined;
  const n = toNumber(address);
  const first = n - (n % size(prefix));
  return { first, prefix, canonical: `${toDotted(first)}/${prefix}`, hostBitsSet: first !== n };
}

/** Whether `inner` lies wholly inside `outer`. */
export const rangeContains = (outer: Ipv4Range, inner: Ipv4Range) =>
  inner.prefix >= outer.prefix && inner.first >= outer.first && inner.first + size(inner.prefix) <= outer.first + size(outer.prefix);

/** Whether two ranges share an address. */
export const rangesOverlap = (a: Ipv4Range, b: Ipv4Range) => rangeContains(a, b) || rangeContains(b, a);
