/** The daemon as the README starts it (`checkid serve`), asked over real HTTP, then stopped. */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startDaemon } from '../support/daemon.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { FIXTURES, seedZone, tempDir } from '../support/fixtures.ts';

const fixtures = FIXTURES;

let dns: DnsTestServer;
before(async () => {
  dns = await startDnsServer({ zone: seedZone() });
});
after(async () => {
  await dns.close();
});

test('checkid serve answers POST /v1/check, reports errors clearly, and drains on SIGTERM', async () => {
  const config = join(tempDir('checkid-serve-'), 'checkid.yaml');
  writeFileSync(config, `${readFileSync(join(fixtures, 'seed-authent.yaml'), 'utf8')}\nhttp:\n  listen: 127.0.0.1:0\nmilter:\n  listen: ''\n`);
  const serve = await startDaemon(['serve', '--config', config, '--resolver', dns.address]);
  const address = serve.listening.http;
  assert.match(address, /^127\.0\.0\.1:\d+$/);
  const url = `http://${address}/v1/check`;

  const ok = await fetch(url, { method: 'POST', body: JSON.stringify({ ip: '192.0.2.1', id: 'example.com' }) });
  assert.equal(ok.status, 200);
  const verdict = (await ok.json()) as { action: string; reply: unknown; headers: unknown };
  assert.equal(verdict.action, 'ACCEPT');
  assert.deepEqual(verdict.headers, [{ label: 'Authent:', text: '192.0.2.1 example.com SPF1 PASS ratings=S1:A,M2:A,H1:B' }]);

  const rejected = (await (await fetch(url, { method: 'POST', body: JSON.stringify({ ip: '192.0.2.1', id: 'example.net' }) })).json()) as { action: string };
  assert.equal(rejected.action, 'REJECT');

  const badJson = await fetch(url, { method: 'POST', body: '{"ip": ' });
  assert.equal(badJson.status, 400);
  assert.match(((await badJson.json()) as { error: string }).error, /not JSON/);
  const badIp = await fetch(url, { method: 'POST', body: JSON.stringify({ ip: 'nope' }) });
  assert.equal(badIp.status, 400);
  const wrongMethod = await fetch(url);
  assert.equal(wrongMethod.status, 405);
  assert.equal((await fetch(`http://${address}/healthz`)).status, 200);

  // SIGHUP reloads the policy without a restart: reject everything from a local block list now
  writeFileSync(config, `${readFileSync(config, 'utf8')}prescreen:\n  block: [192.0.2.1]\n`);
  serve.child.kill('SIGHUP');
  let blocked = '';
  for (let i = 0; i < 100 && blocked !== 'REJECT'; i++) {
    await new Promise((r) => setTimeout(r, 50));
    blocked = ((await (await fetch(url, { method: 'POST', body: JSON.stringify({ ip: '192.0.2.1', id: 'example.com' }) })).json()) as { action: string }).action;
  }
  assert.equal(blocked, 'REJECT');

  assert.equal(await serve.stop(), 0);
});
