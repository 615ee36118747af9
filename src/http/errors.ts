/**
 * An Azure-shaped error: rendered as `{"error":{"code","message","innererror"?}}` with its status.
 * Messages never include secret values, tokens or key material.
 */
export class KeyVaultError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly innerCode?: string,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }

  toBody() {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.innerCode ? { innererror: { code: this.innerCode } } : {}),
      },
    };
  }
}

export const badParameter = (message: string) => new KeyVaultError(400, 'BadParameter', message);
export const badRequest = (message: string) => new KeyVaultError(400, 'BadRequest', message);
export const notFound = (code: string, message: string) => new KeyVaultError(404, code, message);
export const conflict = (code: string, message: string) => new KeyVaultError(409, code, message);
export const forbidden = (message: string, innerCode?: string) => new KeyVaultError(403, 'Forbidden', message, innerCode);
