/**
 * Gateway reports end to end, as a postmaster runs them: a real `checkid siq serve` (its own
 * SQLite file, an account for 127.0.0.1 with an API key from `checkid siq account add`), and a
 * real `checkid serve` whose engine asks it (siq.servers) and reports to it (siq.report). Mail
 * goes through the gateway's HTTP API; the SIQ server's answer for the sender then moves by its
 * profile's reports_ip and reports_domain points.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SiqClient } from '../../src/siq/client.ts';
import type { SiqReply } from '../../src/siq/codec.ts';
import { runCheckid } from '../support/daemon.ts';
import { tempDir } from '../support/fixtures.ts';
import { addressOf, eventually, siqProcessTests } from '../siq/server/processes.ts';

const procs = siqProcessTests();

/** The profile's points for the report checks: distinct numbers, so each one's share of a change shows. */
const REPORT_POINTS = {
  reports_ip: { pass: 10, fail: -30, neutral: -5 },
  reports_domain: { pass: 5, fail: -10, neutral: -2 },
};

async function ask(client: SiqClient, ip: string, domain: string): Promise<SiqReply> {
  const r = await client.query({ ip, domain });
  assert.equal(r.status, 'answer', JSON.stringify(r));
  if (r.status !== 'answer') throw new Error('unreachable');
  return r.reply;
}

/** The value of a metric line (labels included in `name`), or undefined. */
function metric(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

test('checkid serve reports its verdicts to checkid siq serve, and the SIQ score follows the profile', async () => {
  const dir = tempDir('checkid-siq-reports-');
  const siqConfig = join(dir, 'siq.yaml');
  writeFileSync(
    siqConfig,
    [
      "http: { listen: '' }",
      "milter: { listen: '' }",
      'siq_server:',
      '  http_listen: 127.0.0.1:0',
      '  db: siq.db',
      '  cache_ttl: 0                 # every answer computed afresh, so reports show at once',
      '  default_profile:',
      '    base: 70                   # no score here reaches 0 or 100, so every point shows',
      '    checks:',
      '      spf_pass: { fail: -5 }',
      ...Object.entries(REPORT_POINTS).map(
        ([id, p]) => `      ${id}: { pass: ${p.pass}, fail: ${p.fail}, neutral: ${p.neutral} }`,
      ),
      '',
    ].join('\n'),
  );
  const added = await runCheckid([
    'siq', 'account', 'add', '--config', siqConfig, '--email', 'postmaster@gateway.example', '--ip', '127.0.0.1', '--json',
  ]);
  assert.equal(added.code, 0, added.stderr);
  const { apiKey } = JSON.parse(added.stdout) as { apiKey: string };

  const siq = await procs.start(['siq', 'serve', '--listen', '127.0.0.1:0', '--config', siqConfig, '--resolver', procs.dns.address]);
  const udp = addressOf(siq.listening['siq-server'], 'udp');
  const http = addressOf(siq.listening['siq-server'], 'http');

  const gwConfig = join(dir, 'gateway.yaml');
  writeFileSync(join(dir, 'siq.key'), `${apiKey}\n`, { mode: 0o600 });
  writeFileSync(
    gwConfig,
    [
      'http: { listen: 127.0.0.1:0 }',
      "milter: { listen: '' }",
      'siq:',
      `  servers: ["${udp}"]`,
      '  report:',
      `    url: http://${http}/siq/report`,
      '    api_key_file: siq.key',
      '    batch_ms: 50',
      '',
    ].join('\n'),
  );
  const gateway = await procs.start(['serve', '--config', gwConfig, '--resolver', procs.dns.address]);
  const api = `http://${gateway.listening.http}`;
  const check = async (body: Record<string, unknown>) => {
    const res = await fetch(`${api}/v1/check`, { method: 'POST', body: JSON.stringify(body) });
    assert.equal(res.status, 200);
    return ((await res.json()) as { action: string; reason: string }).action;
  };
  const sent = async (n: number) =>
    eventually(async () => {
      const text = await (await fetch(`${api}/metrics`)).text();
      return metric(text, 'checkid_siq_reports_sent_total') === n ? text : undefined;
    }, `${n} reports recorded`);

  const client = new SiqClient({ servers: [udp], cache: false, timeoutMs: 3000 });
  try {
    // 203.0.113.5 sends for good.example, whose SPF allows only 192.0.2.10: SPF fail at MAIL FROM
    const spammer = { ip: '203.0.113.5', helo: 'mail.other.example', mail_from: 'bounce@Good.Example', rcpt: ['a@dest.example'] };
    const before = await ask(client, '203.0.113.5', 'good.example');
    assert.doesNotMatch(before.text, /reports_/, 'no reports yet: the report checks have nothing to say');
    for (let i = 0; i < 4; i++) assert.equal(await check(spammer), 'REJECT');
    const metrics = await sent(4);
    assert.equal(metric(metrics, 'checkid_siq_reports_queued_total{result="rejected"}'), 4);
    assert.equal(metric(metrics, 'checkid_siq_report_requests_total{result="error"}'), 0);

    const afterReject = await ask(client, '203.0.113.5', 'good.example');
    assert.match(afterReject.text, /reports_ip=fail/);
    assert.match(afterReject.text, /reports_domain=fail/);
    // the whole change is the two report checks' fail points; the IP and domain sub-scores each take theirs
    assert.equal(afterReject.score, before.score + REPORT_POINTS.reports_ip.fail + REPORT_POINTS.reports_domain.fail);
    assert.equal(afterReject.ipScore, before.ipScore + REPORT_POINTS.reports_ip.fail);
    // another IP for the same domain: only the domain's reports apply
    const other = await ask(client, '198.51.100.7', 'good.example');
    assert.match(other.text, /reports_domain=fail/);
    assert.doesNotMatch(other.text, /reports_ip=/);

    // 192.0.2.10 is good.example's own server: SPF and DMARC pass, the message is accepted
    const good = {
      ip: '192.0.2.10',
      helo: 'mail.good.example',
      mail_from: 'news@good.example',
      rcpt: ['a@dest.example', 'b@dest.example'],
      headers: 'From: news@good.example\r\nTo: a@dest.example\r\nSubject: news\r\nMessage-ID: <1@good.example>\r\n',
      body: 'Hello.\r\n',
    };
    const goodBefore = await ask(client, '192.0.2.10', 'mail.good.example');
    for (let i = 0; i < 5; i++) assert.match(await check(good), /^(ACCEPT|FILTER)$/);
    const metrics2 = await sent(9);
    // one report per message, however many recipients it had
    assert.equal(metric(metrics2, 'checkid_siq_reports_queued_total{result="accepted"}'), 5);
    const goodAfter = await ask(client, '192.0.2.10', 'mail.good.example');
    assert.match(goodAfter.text, /reports_ip=pass/);
    assert.equal(goodAfter.ipScore, goodBefore.ipScore + REPORT_POINTS.reports_ip.pass);
    assert.equal(goodAfter.score, goodBefore.score + REPORT_POINTS.reports_ip.pass);
  } finally {
    client.close();
  }
  assert.equal(await gateway.stop(), 0);
  assert.equal(await siq.stop(), 0);
});
