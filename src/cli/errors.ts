/**
 * A CLI failure printed as `ERROR: {message}` on stderr with az's exit codes: 1 for most errors, 2 for usage errors,
 * 3 for a resource that was not found. Messages never carry secret values, client secrets or tokens.
 */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1, readonly code?: string) {
    super(message);
  }
}

export const usageError = (message: string) => new CliError(`usage error: ${message}`, 2);

/** An Azure-shaped error response (`{"error":{"code","message"}}` or an OAuth error) as az prints it. */
export function httpError(status: number, body: string, fallback: string): CliError {
  let code: string | undefined;
  let message: string | undefined;
  try {
    const parsed = JSON.parse(body) as { error?: { code?: string; message?: string } | string; error_description?: string };
    if (parsed.error && typeof parsed.error === 'object') {
      code = parsed.error.code;
      message = parsed.error.message;
    } else if (typeof parsed.error === 'string') {
      code = parsed.error;
      message = parsed.error_description;
    }
  } catch {
    // Not JSON: fall back to the status line.
  }
  const text = code ? `(${code}) ${message ?? ''}`.trim() : `${fallback} (HTTP ${status})`;
  return new CliError(text, status === 404 ? 3 : 1, code);
}
