import { badParameter } from '../../http/errors.js';
import { PEM, PKCS12, KEY_USAGES, type CertificateFacts } from './x509.js';

/** A certificate policy in its wire form (snake_case as the data-plane spec spells it), as stored with each version. */
export interface CertificatePolicy {
  key_props: { exportable: boolean; kty: string; key_size?: number; crv?: string; reuse_key: boolean };
  secret_props: { contentType: string };
  x509_props: {
    subject?: string;
    sans?: { dns_names?: string[]; emails?: string[]; upns?: string[] };
    ekus?: string[];
    key_usage?: string[];
    validity_months: number;
  };
  lifetime_actions: { trigger: { lifetime_percentage?: number; days_before_expiry?: number }; action: { action_type: string } }[];
  issuer: { name: string; cty?: string; cert_transparency?: boolean };
  attributes: { enabled: boolean; created: number; updated: number };
}

/** What a client may send: any part of a policy. */
export type PolicyInput = {
  key_props?: Partial<CertificatePolicy['key_props']>;
  secret_props?: Partial<CertificatePolicy['secret_props']>;
  x509_props?: Partial<CertificatePolicy['x509_props']>;
  lifetime_actions?: CertificatePolicy['lifetime_actions'];
  issuer?: Partial<CertificatePolicy['issuer']>;
  attributes?: { enabled?: boolean };
};

const RSA_SIZES = [2048, 3072, 4096];
const CERT_CURVES = ['P-256', 'P-384', 'P-521'];
const CURVE_SIZES: Record<string, number> = { 'P-256': 256, 'P-384': 384, 'P-521': 521 };
const KEY_TYPES = ['RSA', 'EC', 'RSA-HSM', 'EC-HSM'];
const OID = /^[0-9]+(\.[0-9]+)+$/;
/** Azure's defaults: server and client authentication, an RSA-2048 exportable key in a PFX, renewal at 80% of life. */
const DEFAULT_EKUS = ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'];
const DEFAULT_USAGE: Record<string, string[]> = { RSA: ['digitalSignature', 'keyEncipherment'], EC: ['digitalSignature'] };

/**
 * Azure's default lifetime action, at 80% of the lifetime: renewal when the issuer can renew by itself, and otherwise
 * (issuer Unknown: an external CA, or an imported certificate) an email to the contacts.
 */
const defaultLifetimeActions = (issuerName: string): CertificatePolicy['lifetime_actions'] =>
  [{ trigger: { lifetime_percentage: 80 }, action: { action_type: issuerName.toLowerCase() === 'unknown' ? 'EmailContacts' : 'AutoRenew' } }];

const dropEmpty = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/**
 * Merges `input` over `prior` (or Azure's defaults) and checks the result, so an impossible policy is refused with a
 * 400 before anything is generated or stored.
 */
export function resolvePolicy(input: PolicyInput | undefined, prior: CertificatePolicy | undefined, now: number): CertificatePolicy {
  const p = input ?? {};
  const kty = p.key_props?.kty ?? prior?.key_props.kty ?? 'RSA';
  const isRsa = kty.startsWith('RSA');
  const priorX509 = prior?.x509_props;
  const issuerName = p.issuer?.name ?? prior?.issuer.name ?? 'Unknown';
  const policy: CertificatePolicy = {
    key_props: dropEmpty({
      exportable: p.key_props?.exportable ?? prior?.key_props.exportable ?? true,
      kty,
      // An EC key's size is its curve's, so only a size naming the curve is accepted (checked below).
      key_size: isRsa ? p.key_props?.key_size ?? prior?.key_props.key_size ?? 2048 : p.key_props?.key_size,
      crv: isRsa ? undefined : p.key_props?.crv ?? prior?.key_props.crv ?? 'P-256',
      reuse_key: p.key_props?.reuse_key ?? prior?.key_props.reuse_key ?? false,
    }),
    secret_props: { contentType: p.secret_props?.contentType ?? prior?.secret_props.contentType ?? PKCS12 },
    x509_props: dropEmpty({
      subject: p.x509_props?.subject ?? priorX509?.subject,
      sans: p.x509_props?.sans ?? priorX509?.sans,
      ekus: p.x509_props?.ekus ?? priorX509?.ekus ?? DEFAULT_EKUS,
      key_usage: p.x509_props?.key_usage ?? priorX509?.key_usage ?? DEFAULT_USAGE[isRsa ? 'RSA' : 'EC'],
      validity_months: p.x509_props?.validity_months ?? priorX509?.validity_months ?? 12,
    }),
    lifetime_actions: p.lifetime_actions ?? prior?.lifetime_actions ?? defaultLifetimeActions(issuerName),
    issuer: dropEmpty({ ...prior?.issuer, ...p.issuer, name: issuerName }),
    attributes: { enabled: p.attributes?.enabled ?? prior?.attributes.enabled ?? true, created: prior?.attributes.created ?? now, updated: now },
  };
  checkPolicy(policy);
  return policy;
}

function checkPolicy(policy: CertificatePolicy) {
  const { key_props: k, secret_props: s, x509_props: x } = policy;
  if (!KEY_TYPES.includes(k.kty)) throw badParameter(`Invalid key type: ${k.kty}. Valid key types for a certificate are ${KEY_TYPES.join(', ')}.`);
  if (k.crv !== undefined && !CERT_CURVES.includes(k.crv)) throw badParameter(`Invalid curve name for a certificate key: ${k.crv}. Valid curves are ${CERT_CURVES.join(', ')}.`);
  if (k.kty.startsWith('RSA') && k.key_size !== undefined && !RSA_SIZES.includes(k.key_size)) {
    throw badParameter(`Invalid key size: ${k.key_size}. Valid sizes are ${RSA_SIZES.join(', ')}.`);
  }
  if (k.kty.startsWith('EC') && k.key_size !== undefined && k.key_size !== CURVE_SIZES[k.crv!]) {
    throw badParameter(`Invalid key size: ${k.key_size}. The size of an EC key is its curve's: ${CURVE_SIZES[k.crv!]} for ${k.crv}.`);
  }
  if (![PKCS12, PEM].includes(s.contentType)) throw badParameter(`Invalid secret content type: ${s.contentType}. Valid types are ${PKCS12}, ${PEM}.`);
  if (!Number.isInteger(x.validity_months) || x.validity_months < 1 || x.validity_months > 1200) {
    throw badParameter('ValidityInMonths must be between 1 and 1200.');
  }
  for (const eku of x.ekus ?? []) if (!OID.test(eku)) throw badParameter(`Invalid extended key usage: ${eku}. EKUs are object identifiers.`);
  for (const u of x.key_usage ?? []) if (!KEY_USAGES.has(u)) throw badParameter(`Invalid key usage: ${u}.`);
  for (const a of policy.lifetime_actions) {
    const t = a.trigger ?? {};
    if ((t.lifetime_percentage === undefined) === (t.days_before_expiry === undefined)) {
      throw badParameter('A lifetime action trigger must have exactly one of lifetime_percentage and days_before_expiry.');
    }
    if (t.lifetime_percentage !== undefined && (t.lifetime_percentage < 1 || t.lifetime_percentage > 99)) {
      throw badParameter('lifetime_percentage must be between 1 and 99.');
    }
    if (t.days_before_expiry !== undefined && (t.days_before_expiry < 1 || t.days_before_expiry * 86_400 >= x.validity_months * 28 * 86_400)) {
      throw badParameter('days_before_expiry must be at least 1 and less than the certificate validity.');
    }
    if (!['AutoRenew', 'EmailContacts'].includes(a.action?.action_type)) throw badParameter(`Invalid lifetime action type: ${a.action?.action_type}.`);
  }
}

/** The policy an imported certificate gets when the request names none: what the certificate itself says. */
export function policyFromCertificate(facts: CertificateFacts, key: { kty: string; size?: number; crv?: string }, contentType: string): PolicyInput {
  const months = Math.max(1, Math.round((facts.exp - facts.nbf) / (86_400 * 30.4375)));
  const sans = dropEmpty({
    dns_names: facts.dnsNames.length ? facts.dnsNames : undefined,
    emails: facts.emails.length ? facts.emails : undefined,
    upns: facts.upns.length ? facts.upns : undefined,
  });
  return {
    key_props: { kty: key.kty, key_size: key.size, crv: key.crv, exportable: true, reuse_key: false },
    secret_props: { contentType },
    x509_props: {
      subject: facts.subject, ...(Object.keys(sans).length ? { sans } : {}),
      ekus: facts.ekus, key_usage: facts.keyUsage, validity_months: Math.min(months, 1200),
    },
    issuer: { name: 'Unknown' },
  };
}

/** Months added the calendar way (Jan 31 + 1 month = Feb 28/29), as certificate validity counts them. */
export function addMonths(from: Date, months: number): Date {
  const d = new Date(from);
  const day = d.getUTCDate();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() + months);
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  d.setUTCDate(Math.min(day, last));
  return d;
}
