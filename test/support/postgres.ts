import pg from 'pg';

/**
 * PostgreSQL helpers for tests. `npm test` sets COFFER_TEST_STORAGE_URL (a server where tests may create databases)
 * for its PostgreSQL pass; without it, PostgreSQL-only tests skip.
 */
export const testStorageUrl = process.env.COFFER_TEST_STORAGE_URL;

/** Why a PostgreSQL-only test is skipped in this run, or false when it can run. */
export const postgresSkipReason: string | false = testStorageUrl
  ? false
  : 'PostgreSQL only: runs in the PostgreSQL pass of `npm test` (COFFER_TEST_STORAGE_URL)';

/** The storage engines a storage test runs on: SQLite always, PostgreSQL when the run provides a server. */
export function enginesUnderTest(): Array<{ engine: 'sqlite' | 'postgres'; skip: string | false }> {
  return [{ engine: 'sqlite', skip: false }, { engine: 'postgres', skip: postgresSkipReason }];
}

/** A new, empty database on the test server; returns its URL. */
export async function freshDatabase(serverUrl = requiredUrl()): Promise<string> {
  const name = `coffer_test_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  await query(serverUrl, `create database ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Runs one statement on its own connection (tests look at the database directly: leases, version counts). */
export async function query<T extends pg.QueryResultRow = any>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

function requiredUrl(): string {
  if (!testStorageUrl) throw new Error('COFFER_TEST_STORAGE_URL is not set');
  return testStorageUrl;
}
