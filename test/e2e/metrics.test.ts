import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.js';
import { createPrincipal } from '../support/arm.js';

let server: TestServer;
const VAULT = 'metricsv';

before(async () => {
  server = await startTestServer({ throttle: 'azure', metricsPort: 0 });
  await server.createVault(VAULT);
});
after(async () => server?.close());

async function scrape(token?: string) {
  const res = await fetch(`${server.admin.managementEndpoint}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}
const managementToken = async (credential = server.adminCredential) => (await credential.getToken(`${server.admin.managementEndpoint}/.default`))!.token;

/** The value of one sample of the exposition, by metric name and exact labels (0 when absent). */
function sample(text: string, name: string, labels: Record<string, string>) {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z_:][\w:]*)\{([^}]*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = match[2].split(',');
    if (have.length === wanted.length && wanted.every((w) => have.includes(w))) return Number(match[3]);
  }
  return 0;
}

test('a scrape\'s counters match the requests made, by vault, activity and status code', async () => {
  const client = server.secretClient(VAULT);
  for (let i = 0; i < 3; i++) await client.setSecret(`s${i}`, 'value');
  for (let i = 0; i < 5; i++) await client.getSecret('s1');
  await assert.rejects(client.getSecret('missing'), (err: any) => err.statusCode === 404);

  const { status, type, text } = await scrape(await managementToken());
  assert.equal(status, 200);
  assert.match(type!, /^text\/plain/);
  const secret = { vault: VAULT, activityType: 'secret' };
  assert.equal(sample(text, 'ServiceApiHit', { ...secret, activityName: 'SecretSet' }), 3);
  assert.equal(sample(text, 'ServiceApiHit', { ...secret, activityName: 'SecretGet' }), 6);
  assert.equal(sample(text, 'ServiceApiResult', { ...secret, activityName: 'SecretGet', statusCode: '200', statusCodeClass: '2xx' }), 5);
  assert.equal(sample(text, 'ServiceApiResult', { ...secret, activityName: 'SecretGet', statusCode: '404', statusCodeClass: '4xx' }), 1);
  assert.equal(sample(text, 'ServiceApiLatency_count', { ...secret, activityName: 'SecretGet' }), 6);
  assert.ok(sample(text, 'ServiceApiLatency_sum', { ...secret, activityName: 'SecretGet' }) > 0);
  // (3 × 13.3 + 6) units of the 4,000-unit budget spent in this window.
  const saturation = sample(text, 'SaturationShoebox', { vault: VAULT });
  assert.ok(Math.abs(saturation - ((3 * 4000 / 300 + 6) / 4000) * 100) < 1e-6, `saturation ${saturation}`);
  assert.equal(sample(text, 'Availability', { vault: VAULT }), 100, 'no service errors: 404 is the caller\'s');
  assert.match(text, /^process_cpu_user_seconds_total /m);
  assert.match(text, /^nodejs_heap_size_used_bytes /m);
  assert.ok(!text.includes('value'), 'no secret value in metrics');
});

test('/metrics is for the administrator only; --metrics-port serves it on loopback without a token', async () => {
  assert.equal((await scrape()).status, 401);
  const stranger = await createPrincipal(server, 'metrics-stranger');
  assert.equal((await scrape(await managementToken(stranger.credential))).status, 403);

  const port = server.coffer.metricsPort!;
  const open = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(open.status, 200);
  assert.ok(sample(await open.text(), 'ServiceApiHit', { vault: VAULT, activityType: 'secret', activityName: 'SecretSet' }) >= 3);
  assert.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
});
