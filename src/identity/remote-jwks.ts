import { createRemoteJWKSet } from 'jose';

export type RemoteKeySet = ReturnType<typeof createRemoteJWKSet>;

/**
 * Remote JSON Web Key Sets of other token issuers, one per URL for the life of the process: jose fetches a set
 * lazily and refetches it when a token names an unknown `kid` (no more often than its cooldown), so a rotated issuer
 * key is picked up without a restart.
 */
export function createRemoteKeySets(options: { timeoutMs?: number; cooldownMs?: number } = {}) {
  const byUri = new Map<string, RemoteKeySet>();
  const byIssuer = new Map<string, Promise<RemoteKeySet>>();
  const timeoutMs = options.timeoutMs ?? 10_000;

  const fromJwksUri = (jwksUri: string): RemoteKeySet => {
    let keySet = byUri.get(jwksUri);
    if (!keySet) {
      keySet = createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: timeoutMs, ...(options.cooldownMs !== undefined && { cooldownDuration: options.cooldownMs }) });
      byUri.set(jwksUri, keySet);
    }
    return keySet;
  };

  return {
    /** The key set published at a JWKS URL. */
    fromJwksUri,

    /**
     * The key set of an OpenID issuer, found through its discovery document (`{issuer}/.well-known/openid-configuration`
     * → `jwks_uri`, resolved against the issuer). Discovery happens once per issuer; a failed one is forgotten so the
     * next token tries again. `acceptJwksUri` may refuse the URL the document names (e.g. anything but https).
     */
    fromIssuer(issuerUrl: string, acceptJwksUri: (url: URL) => boolean = () => true): Promise<RemoteKeySet> {
      const issuer = issuerUrl.replace(/\/+$/, '');
      let keySet = byIssuer.get(issuer);
      if (!keySet) {
        keySet = (async () => {
          const res = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(timeoutMs) });
          if (!res.ok) throw new Error(`discovery answered ${res.status}`);
          const { jwks_uri: jwksUri } = await res.json() as { jwks_uri?: unknown };
          if (typeof jwksUri !== 'string' || !jwksUri) throw new Error('discovery names no jwks_uri');
          const url = new URL(jwksUri, issuer);
          if (!acceptJwksUri(url)) throw new Error(`discovery names an unacceptable jwks_uri`);
          return fromJwksUri(url.href);
        })();
        keySet.catch(() => byIssuer.delete(issuer));
        byIssuer.set(issuer, keySet);
      }
      return keySet;
    },
  };
}
