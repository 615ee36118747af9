import type { FastifyRequest } from 'fastify';
import { KeyVaultError } from '../../http/errors.js';
import type { Directory } from '../../identity/directory.js';
import { TokenRejected, type TokenClaims } from '../../identity/tokens.js';
import type { Endpoints } from '../../endpoints.js';
import type { RequestContext } from '../../pipeline/context.js';

type Verify = (token: string) => Promise<TokenClaims>;
/** A token of a trusted external issuer as the principal it is mapped to; undefined when its issuer is not trusted. */
type VerifyExternal = (token: string) => Promise<{ claims: TokenClaims } | undefined>;

/**
 * Gate 1, identity: every vault and management request carries a valid bearer token of this tenant, for this
 * plane's audience, from a principal that exists and is enabled now — or, on the data plane, a token of a trusted
 * external issuer whose subject is mapped to such a principal. A data-plane 401 carries Key Vault's challenge.
 */
export function createIdentityGate(deps: { endpoints: Endpoints; tenantId: string; directory: Pick<Directory, 'getPrincipal'>; verifyDataPlane: Verify; verifyManagement: Verify; verifyExternal?: VerifyExternal }) {
  const { endpoints, tenantId, directory } = deps;
  const challenge = `Bearer authorization="${endpoints.authorityHost}/${tenantId}", resource="${endpoints.dataPlaneResource}"`;

  const reject = (ctx: RequestContext, akvCode: string, message: string) => ctx.plane === 'vault'
    ? new KeyVaultError(401, 'Unauthorized', `${akvCode}: ${message}`, undefined, { 'www-authenticate': challenge })
    : new KeyVaultError(401, 'AuthenticationFailed', `Authentication failed. ${message}`, undefined, {
      'www-authenticate': `Bearer authorization_uri="${endpoints.authorityHost}/${tenantId}", error="invalid_token", error_description="${message.replace(/"/g, "'")}"`,
    });

  const verifyExternal = async (verify: VerifyExternal, token: string, ctx: RequestContext) => {
    try {
      return await verify(token);
    } catch (err) {
      if (err instanceof TokenRejected) throw reject(ctx, err.akvCode, err.message);
      throw err;
    }
  };

  return {
    name: 'identity',
    appliesTo: (ctx: RequestContext) => ctx.plane === 'vault' || ctx.plane === 'management',
    async check(req: FastifyRequest, ctx: RequestContext) {
      const header = req.headers.authorization;
      const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
      if (!match) throw reject(ctx, 'AKV10000', 'Request is missing a Bearer or PoP token.');
      let claims: TokenClaims;
      try {
        claims = await (ctx.plane === 'vault' ? deps.verifyDataPlane : deps.verifyManagement)(match[1]);
      } catch (err) {
        if (!(err instanceof TokenRejected)) throw err;
        // Only a token this service did not issue is looked at again, so our own tokens' path costs nothing more.
        const external = ctx.plane === 'vault' && deps.verifyExternal ? await verifyExternal(deps.verifyExternal, match[1], ctx) : undefined;
        if (!external) throw reject(ctx, err.akvCode, err.message);
        claims = external.claims;
      }
      const principal = await directory.getPrincipal(claims.oid);
      if (!principal || !principal.enabled) throw reject(ctx, 'AKV10032', 'The principal of this token is disabled or no longer exists.');
      // Stricter than Entra, on purpose: removing a credential or disabling a principal voids its tokens at once.
      if (claims.xms_cgen !== principal.credentialGeneration) throw reject(ctx, 'AKV10032', 'The credentials this token was issued for have been revoked.');
      ctx.caller = { claims, principal };
    },
  };
}
