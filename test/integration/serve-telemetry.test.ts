/** `checkid serve`: the mail-log line on stdout, JSON logs on stderr, GET /metrics on the HTTP API. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { startDaemon } from '../support/daemon.ts';
import { FIXTURES, seedZone, tempDir } from '../support/fixtures.ts';

let dns: DnsTestServer;
before(async () => {
  dns = await startDnsServer({ zone: seedZone() });
});
after(async () => {
  await dns.close();
});

test('serve writes one mail-log line per final verdict to stdout and counts it in /metrics', async () => {
  const config = join(tempDir('checkid-telemetry-'), 'checkid.yaml');
  writeFileSync(
    config,
    `${readFileSync(join(FIXTURES, 'seed-authent.yaml'), 'utf8')}\nhttp:\n  listen: 127.0.0.1:0\nmilter:\n  listen: inet:127.0.0.1:0\npolicy:\n  listen: inet:127.0.0.1:0\nreadsocket:\n  listen: inet:127.0.0.1:0\n`,
  );
  const serve = await startDaemon(['serve', '--config', config, '--resolver', dns.address], { env: { CHECKID_LOG_LEVEL: 'info' } });
  try {
    const listening = serve.logs.find((e) => e.msg === 'checkid listening')!;
    assert.equal(listening.level, 'info');
    assert.match(String(listening.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const base = `http://${serve.listening.http}`;

    const r = (await (await fetch(`${base}/v1/check`, { method: 'POST', body: JSON.stringify({ ip: '192.0.2.1', id: 'example.net', mail_from: 'a@example.net', rcpt: ['b@example.org'] }) })).json()) as { action: string };
    assert.equal(r.action, 'REJECT');
    const line = await serve.waitFor<string>('the mail-log line', (l) => l.startsWith('checkid: '));
    assert.equal(
      line,
      `checkid: client=[192.0.2.1] helo=- id=example.net from=- to=- stage=id action=REJECT reply="550 5.7.1 Sending MTA '192.0.2.1' not authorized by 'example.net'" reason=identity-spf-fail facts="iprev=pass id=fail ratings=none"`,
    );

    const metrics = await fetch(`${base}/metrics`);
    assert.equal(metrics.status, 200);
    const text = await metrics.text();
    assert.match(text, /^checkid_verdicts_total\{stage="id",action="REJECT",reason="identity-spf-fail"\} 1$/m);
    assert.match(text, /^checkid_check_results_total\{check="identity",result="fail"\} 1$/m);
    assert.match(text, /^checkid_build_info\{version="\d+\.\d+\.\d+"\} 1$/m);
    // the seed asks DNS for SPF, iprev and ratings: all through the resolver whose stats we read
    const lookups = Number(/^checkid_dns_lookups_total (\d+)$/m.exec(text)?.[1]);
    const misses = Number(/^checkid_dns_cache_misses_total (\d+)$/m.exec(text)?.[1]);
    assert.ok(lookups >= 3, `lookups ${lookups}`);
    assert.ok(misses >= 1 && misses <= lookups);
    assert.match(text, /^checkid_connections_total\{listener="http"\} [1-9]\d*$/m);

    // every listener counts its connections: one held open to each of milter, policy and readsocket
    const port = (address: string) => Number(/:(\d+)$/.exec(address)![1]);
    const held = [serve.listening.milter, serve.listening.policy, serve.listening.readsocket].map((a) => net.connect(port(a!), '127.0.0.1'));
    await Promise.all(held.map((c) => once(c, 'connect')));
    const want = ['milter', 'policy', 'readsocket'].map((l) => `checkid_connections_active{listener="${l}"} 1`);
    let active: string[] = [];
    for (let i = 0; i < 100 && !want.every((w) => active.includes(w)); i++) {
      active = (await (await fetch(`${base}/metrics`)).text()).split('\n').filter((l) => l.startsWith('checkid_connections_active'));
    }
    for (const w of want) assert.ok(active.includes(w), `${w} in\n${active.join('\n')}`);
    for (const c of held) c.destroy();
  } finally {
    assert.equal(await serve.stop(), 0);
  }
  // one line for the one final verdict, and nothing else on stdout
  assert.equal(serve.stdout.length, 1);
});
