/**
 * checkid serve without --config: the policy overlay in the state directory is read at start,
 * the dashboard's Apply writes it, and the next verdict follows it.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { OVERLAY_FILE } from '../../src/policy/store.ts';
import { startDaemon } from '../support/daemon.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { seedZone, tempDir } from '../support/fixtures.ts';

let dns: DnsTestServer;
before(async () => {
  const zone = seedZone();
  (zone as Record<string, unknown>)['1.2.0.192.bl.example'] = [{ A: '127.0.0.2' }];
  dns = await startDnsServer({ zone });
});
after(async () => {
  await dns.close();
});

test('without a config file, Apply writes the overlay in the state directory and the policy follows it', async () => {
  const state = tempDir('checkid-state-');
  const overlay = join(state, OVERLAY_FILE);
  // the overlay from an earlier Apply (and a hand edit: listeners for this test, a DNS list)
  writeFileSync(
    overlay,
    "# written by the dashboard, edited by hand\nhttp:\n  listen: 127.0.0.1:0\nmilter:\n  listen: ''\ndashboard:\n  listen: 127.0.0.1:0\n  history:\n    db: memory\nprescreen:\n  dnsbl:\n    - { zone: bl.example, weight: 1, self_test: false }\n  threshold: 2   # not yet\n",
  );
  const serve = await startDaemon(['serve', '--resolver', dns.address], { env: { STATE_DIRECTORY: state } });
  const { http, dashboard } = serve.listening;
  try {
    // 192.0.2.1 is on bl.example (weight 1), under the threshold 2 of the overlay: not rejected
    const ask = async () =>
      (await (await fetch(`http://${http}/v1/check`, { method: 'POST', body: JSON.stringify({ ip: '192.0.2.1', id: 'example.com' }) })).json()) as { action: string; reason: string };
    assert.equal((await ask()).action, 'CONTINUE');
    const stateRes = await fetch(`http://${dashboard}/api/state`);
    const cookie = stateRes.headers.getSetCookie()[0]!.split(';')[0]!;
    const s = (await stateRes.json()) as { csrf: string; policy: { apply: { file: string; overlay: boolean }; thresholds: { dnsblThreshold: number } } };
    assert.deepEqual(s.policy.apply, { file: overlay, overlay: true });
    assert.equal(s.policy.thresholds.dnsblThreshold, 2);
    const post = (path: string, body: unknown) =>
      fetch(`http://${dashboard}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json', cookie, 'x-csrf-token': s.csrf }, body: JSON.stringify(body) });
    const pending = (await (await post('/api/apply', { candidate: { dnsblThreshold: 1 } })).json()) as { confirm: string; changes: unknown };
    assert.deepEqual(pending.changes, [{ key: 'prescreen.threshold', from: 2, to: 1 }]);
    const done = await post('/api/apply/confirm', { confirm: pending.confirm });
    assert.equal(done.status, 200);
    assert.equal(((await done.json()) as { ok: boolean }).ok, true);
    assert.match(readFileSync(overlay, 'utf8'), /^ {2}threshold: 1 {3}# not yet$/m);
    assert.match(readFileSync(overlay, 'utf8'), /^# written by the dashboard, edited by hand$/m);
    const v = await ask();
    assert.equal(v.action, 'REJECT');
    assert.equal(v.reason, 'dnsbl');
  } finally {
    assert.equal(await serve.stop(), 0);
  }
});
