import assert from 'node:assert/strict';
import { RestError } from '@azure/core-rest-pipeline';

export type SdkError = RestError & { details?: any };

/** Runs `action`, which must fail as the Azure SDKs fail (a RestError), and returns that error. */
export async function restError(action: () => Promise<unknown>): Promise<SdkError> {
  try {
    await action();
  } catch (err) {
    assert.ok(err instanceof RestError, `expected a RestError, got ${String(err)}`);
    return err as SdkError;
  }
  assert.fail('expected the operation to fail');
}

/** The error body's innererror code (the SDK keeps the deserialized body, `innererror` → `innerError`). */
export const innerCode = (err: SdkError): string | undefined => err.details?.error?.innerError?.code;

/** The HTTP status an SDK call ends with: 200 when it succeeds. */
export async function statusOf(action: () => Promise<unknown>): Promise<number> {
  try {
    await action();
    return 200;
  } catch (err) {
    assert.ok(err instanceof RestError, String(err));
    return err.statusCode!;
  }
}
