/**
 * The dashboard end to end, in real headless Chromium against a real `checkid serve` (the HTTP
 * API and the dashboard listeners), a real DNS server and a scripted SIQ server: verdicts pushed
 * through the HTTP API appear live, the charts show them, the what-if's counts are what the
 * recorded history implies, Apply (with its confirmation) changes the config file and the live
 * policy, and the next verdict is decided by the new threshold. Then: a dashboard off loopback
 * needs users and a sign-in; cross-site and token-less POSTs are refused.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { hashPassword } from '../../src/web/password.ts';
import { browserSkip, launchBrowser } from '../support/browser.ts';
import { type Daemon, DaemonStartError, startDaemon } from '../support/daemon.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { seedZone, tempDir } from '../support/fixtures.ts';
import { type SiqTestServer, startSiqServer } from '../support/siq-server.ts';

/** SIQ scores by MAIL FROM domain (the scripted SIQ server answers these). */
const SCORES: Record<string, number> = {
  'spam.example': 5,
  'grey.example': 30,
  'ok.example': 45,
  'good.example': 70,
  'fine.example': 95,
};
/** The mail pushed through the HTTP API: client IP and sender domain. */
const MAIL: Array<[string, string]> = [
  ['192.0.2.10', 'spam.example'],
  ['192.0.2.10', 'spam.example'],
  ['192.0.2.11', 'grey.example'],
  ['192.0.2.12', 'ok.example'],
  ['192.0.2.13', 'good.example'],
  ['192.0.2.14', 'fine.example'],
];

const OPERATOR_NOTE = '# SIQ: tag what the box dislikes (kept by the dashboard)';

/** Starts `checkid serve` on a config; resolves once it listens (or with its exit status). */
async function serve(config: string, dns: DnsTestServer): Promise<Daemon | { exit: number | null; stderr: string }> {
  try {
    return await startDaemon(['serve', '--config', config, '--resolver', dns.address]);
  } catch (err) {
    if (!(err instanceof DaemonStartError)) throw err;
    return { exit: err.code, stderr: err.stderr };
  }
}

async function check(http: string, ip: string, domain: string): Promise<{ action: string; reason: string; reply: { code: number }; subjectTag?: string; verdict?: unknown }> {
  const res = await fetch(`http://${http}/v1/check`, {
    method: 'POST',
    body: JSON.stringify({
      ip,
      mail_from: `news@${domain}`,
      rcpt: ['postmaster@receiver.example'],
      headers: `From: news@${domain}\r\nSubject: hello\r\n`,
      body: 'hello\r\n',
    }),
  });
  assert.equal(res.status, 200);
  return (await res.json()) as { action: string; reason: string; reply: { code: number } };
}

function baseConfig(dir: string, siq: SiqTestServer, dashboard: string): string {
  return `# checkid for the dashboard test
authserv_id: mx.receiver.example
state_dir: ${dir}/state
http:
  listen: 127.0.0.1:0
milter:
  listen: ''
siq:
  servers: [${siq.address}]
  timeout_ms: 1000
  ${OPERATOR_NOTE}
  tag_score: 50    # at or below: [SPAM]
  reject_score: -1 # off until we have seen the numbers
${dashboard}`;
}

/** Polls `check` (page state read through Playwright) until it holds. */
async function until(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const skip = browserSkip();

describe('the dashboard in Chromium', { skip }, () => {
  let dns: DnsTestServer;
  let siq: SiqTestServer;
  let browser: Browser;
  before(async () => {
    const zone = seedZone();
    for (const d of Object.keys(SCORES)) (zone as Record<string, unknown>)[d] = [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }];
    dns = await startDnsServer({ zone });
    siq = await startSiqServer({
      script: (q) => ({ reply: { score: SCORES[q.domain] ?? 50, ipScore: -1, domainScore: SCORES[q.domain] ?? 50, relScore: -1, ttl: 300, confidence: 90, text: 'test' } }),
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await siq?.close();
    await dns?.close();
  });

  test('live verdicts, charts, the what-if over the history, Apply with confirmation, the next verdict under the new threshold', async () => {
    const dir = tempDir('checkid-dash-');
    const config = join(dir, 'checkid.yaml');
    writeFileSync(config, baseConfig(dir, siq, `dashboard:\n  listen: 127.0.0.1:0\n  history:\n    db: ${dir}/history.db\n`));
    const d = await serve(config, dns);
    assert.ok('child' in d, `checkid serve did not start: ${'stderr' in d ? d.stderr : ''}`);
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    try {
      await page.goto(`http://${d.listening.dashboard}/`);
      await page.waitForSelector('body[data-ready="true"]');
      await page.waitForSelector('#live-status.ok');
      assert.match(await page.textContent('#policy-line') ?? '', /SIQ tag ≤ 50, SIQ reject ≤ -1/);

      // verdicts pushed through the HTTP API show up live, newest first, with their explanation
      for (const [ip, domain] of MAIL) {
        const v = await check(d.listening.http, ip, domain);
        assert.equal(v.action, 'FILTER', `${domain}: ${JSON.stringify(v)}`);
      }
      await until('every verdict in the live table', async () => (await page.locator('#live tbody tr').count()) === MAIL.length);
      const rows = await page.$$eval('#live tbody tr', (trs) => trs.map((tr) => [tr.getAttribute('data-ip'), tr.getAttribute('data-action'), tr.children[2]!.textContent, tr.children[4]!.textContent]));
      assert.deepEqual(
        rows,
        [...MAIL].reverse().map(([ip, domain]) => [ip, 'FILTER', domain, SCORES[domain]! <= 50 ? 'FILTER (tagged)' : 'FILTER']),
      );
      const facts = await page.textContent('#live tbody tr:first-child td.facts');
      assert.match(facts ?? '', /siq=95/);
      await page.click('#live tbody tr:first-child summary');
      assert.match((await page.textContent('#live tbody tr:first-child details ul')) ?? '', /not reputable enough to skip filtering/);

      // the charts: six FILTER verdicts over time; the SIQ histogram has the scores' buckets
      await until('the charts cover every verdict', async () => (await page.getAttribute('#charts-section', 'data-records')) === String(MAIL.length));
      const actionBars = await page.$$eval('#chart-actions svg rect.bar', (rs) => rs.map((r) => [r.getAttribute('data-series'), Number(r.getAttribute('data-value'))]));
      assert.equal(actionBars.filter(([s]) => s === 'FILTER').reduce((sum, [, v]) => sum + (v as number), 0), 6);
      await page.locator('#chart-siq svg rect.bar').first().waitFor();
      const siqBars = Object.fromEntries(await page.$$eval('#chart-siq svg rect.bar', (rs) => rs.map((r) => [r.getAttribute('data-label'), Number(r.getAttribute('data-value'))])));
      const expectedBuckets: Record<string, number> = {};
      for (const [, domain] of MAIL) {
        const s = SCORES[domain]!;
        const label = s >= 90 ? '90–100' : `${Math.floor(s / 10) * 10}–${Math.floor(s / 10) * 10 + 9}`;
        expectedBuckets[label] = (expectedBuckets[label] ?? 0) + 1;
      }
      assert.deepEqual(siqBars, expectedBuckets);

      // the what-if: reject at or below 30, tag at or below 80 — the counts the history implies
      const reject = 30;
      const tag = 80;
      const scores = MAIL.map(([, domain]) => SCORES[domain]!);
      const wantRejected = scores.filter((s) => s <= reject).length;
      const wantNewlyTagged = scores.filter((s) => s > reject && s > 50 && s <= tag).length;
      const wantNoLongerTagged = scores.filter((s) => s <= reject && s <= 50).length;
      await page.fill('#siqRejectScore', String(reject));
      await page.fill('#siqTagScore', String(tag));
      await until('the what-if with both thresholds', async () => (await page.textContent('#wi-newly-rejected')) === String(wantRejected) && (await page.textContent('#wi-newly-tagged')) !== '0');
      await page.waitForSelector('#whatif-section:not([aria-busy])');
      assert.equal(await page.textContent('#wi-records'), String(MAIL.length));
      assert.equal(await page.textContent('#wi-newly-rejected'), String(wantRejected));
      assert.equal(await page.textContent('#wi-newly-tagged'), String(wantNewlyTagged));
      assert.equal(await page.textContent('#wi-no-longer-tagged'), String(wantNoLongerTagged));
      assert.equal(await page.textContent('#wi-rejected'), `0 → ${wantRejected}`);
      const senders = await page.$$eval('#wi-senders tbody tr', (trs) => trs.map((tr) => [tr.getAttribute('data-key'), Number(tr.children[2]!.textContent), Number(tr.children[3]!.textContent)]));
      assert.deepEqual(senders, [
        ['spam.example', 2, 0],
        ['good.example', 0, 1],
        ['grey.example', 1, 0],
      ]);
      const clients = await page.$$eval('#wi-clients tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-key')));
      assert.deepEqual(clients, ['192.0.2.10', '192.0.2.11', '192.0.2.13']);
      // the SIQ chart marks the tried reject threshold
      assert.match((await page.textContent('#chart-siq svg g.marker')) ?? '', /reject ≤ 30/);

      // Apply asks first; Cancel changes nothing
      await page.click('#apply');
      await page.waitForSelector('#confirm:not([hidden])');
      const changes = await page.$$eval('#confirm-changes li', (lis) => lis.map((li) => li.textContent));
      assert.deepEqual(changes, ['siq.tag_score: 50 → 80', 'siq.reject_score: -1 → 30']);
      assert.match((await page.textContent('#confirm-impact')) ?? '', new RegExp(`${wantRejected} newly rejected`));
      await page.click('#confirm-no');
      assert.match((await page.textContent('#apply-result')) ?? '', /Cancelled/);
      assert.match(readFileSync(config, 'utf8'), /reject_score: -1 #/);
      // Apply, then confirm: the file changes (the operator's comments stay) and the policy reloads
      await page.click('#apply');
      await page.waitForSelector('#confirm:not([hidden])');
      await page.click('#confirm-yes');
      await page.waitForSelector('#apply-result.ok');
      assert.match((await page.textContent('#apply-result')) ?? '', /Applied: policy generation 2 is live/);
      const text = readFileSync(config, 'utf8');
      assert.match(text, /^ {2}tag_score: 80 {4}# at or below: \[SPAM\]$/m);
      assert.match(text, /^ {2}reject_score: 30 # off until we have seen the numbers$/m);
      assert.ok(text.includes(OPERATOR_NOTE));
      assert.match((await page.textContent('#policy-line')) ?? '', /generation 2 .* SIQ tag ≤ 80, SIQ reject ≤ 30/);

      // the next verdicts through the HTTP API are decided by the new thresholds
      const spam = await check(d.listening.http, '192.0.2.20', 'spam.example');
      assert.equal(spam.action, 'REJECT');
      assert.equal(spam.reason, 'siq-reject');
      assert.equal(spam.reply.code, 550);
      const good = await check(d.listening.http, '192.0.2.21', 'good.example');
      assert.equal(good.action, 'FILTER');
      assert.equal(good.subjectTag, '[SPAM]', 'score 70 is now at or below the tag threshold');
      await page.waitForSelector('#live tbody tr[data-ip="192.0.2.20"][data-action="REJECT"][data-reason="siq-reject"]');
      assert.deepEqual(errors, []);
      // every verdict made it into the history, as the metrics say
      const metrics = await (await fetch(`http://${d.listening.http}/metrics`)).text();
      assert.match(metrics, new RegExp(`checkid_history_records_total\\{outcome="written"\\} ${MAIL.length + 2}\\n`));
      assert.match(metrics, /checkid_history_records_total\{outcome="dropped"\} 0\n/);
    } finally {
      await page.close();
      assert.equal(await d.stop(), 0);
    }
    assert.ok(d.stderr.some((l) => l.includes('dashboard: thresholds applied')), 'the change is logged');
  });

  test('off loopback: refused without users; with users, a sign-in first, and the API answers 401 before it', async () => {
    const dir = tempDir('checkid-dash-');
    const config = join(dir, 'checkid.yaml');
    writeFileSync(config, baseConfig(dir, siq, 'dashboard:\n  listen: 0.0.0.0:0\n  history:\n    db: memory\n'));
    const refused = await serve(config, dns);
    assert.ok('exit' in refused, 'serve must not start an open dashboard off loopback');
    assert.equal(refused.exit, 3);
    assert.match(refused.stderr, /dashboard\.listen is 0\.0\.0\.0:0, not a loopback address, and dashboard\.users is empty/);

    const hash = await hashPassword('correct horse battery staple');
    writeFileSync(config, baseConfig(dir, siq, `dashboard:\n  listen: 0.0.0.0:0\n  history:\n    db: memory\n  users:\n    - name: postmaster\n      password_hash: ${hash}\n`));
    const d = await serve(config, dns);
    assert.ok('child' in d, `checkid serve did not start: ${'stderr' in d ? d.stderr : ''}`);
    const port = d.listening.dashboard.split(':').pop();
    const base = `http://127.0.0.1:${port}`;
    const page: Page = await browser.newPage();
    try {
      const api = await fetch(`${base}/api/state`, { headers: { accept: 'application/json' } });
      assert.equal(api.status, 401);
      await page.goto(`${base}/`);
      assert.match(page.url(), /\/signin\?next=%2F$/);
      await page.fill('#username', 'postmaster');
      await page.fill('#password', 'wrong password, surely');
      await page.click('button[type=submit]');
      assert.match((await page.textContent('#signin-error')) ?? '', /Wrong user name or password/);
      await page.fill('#password', 'correct horse battery staple');
      await page.click('button[type=submit]');
      await page.waitForSelector('body[data-ready="true"]');
      assert.equal(new URL(page.url()).pathname, '/');
      assert.match((await page.textContent('header.top form.signout')) ?? '', /postmaster/);
      assert.match((await page.textContent('#policy-line')) ?? '', /policy generation 1/);
    } finally {
      await page.close();
      assert.equal(await d.stop(), 0);
    }
  });

  test('CSRF: Apply without the token, from another origin, or to a rebound host name is refused', async () => {
    const dir = tempDir('checkid-dash-');
    const config = join(dir, 'checkid.yaml');
    writeFileSync(config, baseConfig(dir, siq, 'dashboard:\n  listen: 127.0.0.1:0\n  history:\n    db: memory\n'));
    const d = await serve(config, dns);
    assert.ok('child' in d, `checkid serve did not start: ${'stderr' in d ? d.stderr : ''}`);
    const base = `http://${d.listening.dashboard}`;
    const page = await browser.newPage();
    try {
      await page.goto(`${base}/`);
      await page.waitForSelector('body[data-ready="true"]');
      const post = (path: string, headers: Record<string, string>, body: unknown) =>
        page.evaluate(
          async ({ path, headers, body }) => {
            const res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json', ...headers }, body: JSON.stringify(body) });
            return { status: res.status, body: await res.text() };
          },
          { path, headers, body },
        );
      const token = await page.evaluate(async () => ((await (await fetch('/api/state')).json()) as { csrf: string }).csrf);
      const apply = { candidate: { siqRejectScore: 10 } };
      // from the page itself, without the token and with a wrong one: 403
      const none = await post('/api/apply', {}, apply);
      assert.equal(none.status, 403, none.body);
      assert.match(none.body, /expired or did not come from this site/);
      const wrong = await post('/api/apply', { 'x-csrf-token': `${token.slice(0, -2)}xx` }, apply);
      assert.equal(wrong.status, 403);
      // with the token: the confirmation step (nothing applied yet)
      const ok = await post('/api/apply', { 'x-csrf-token': token }, apply);
      assert.equal(ok.status, 200, ok.body);
      const { confirm } = JSON.parse(ok.body) as { confirm: string };
      assert.match(readFileSync(config, 'utf8'), /reject_score: -1 #/);
      // the cookie and token replayed by another site (a different Origin): 403
      const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
      const cross = await fetch(`${base}/api/apply/confirm`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', cookie, 'x-csrf-token': token, origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
        body: JSON.stringify({ confirm }),
      });
      assert.equal(cross.status, 403);
      // a DNS-rebinding page: same IP, another host name
      const [host, port] = d.listening.dashboard.split(':') as [string, string];
      const rebound = await new Promise<number>((resolve, reject) => {
        const req = request({ host, port: Number(port), path: '/api/state', headers: { host: `evil.example:${port}`, accept: 'application/json' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(rebound, 421);
      assert.match(readFileSync(config, 'utf8'), /reject_score: -1 #/, 'nothing was applied');
      // and the confirmation itself, from the page with its token, still works once
      const confirmed = await post('/api/apply/confirm', { 'x-csrf-token': token }, { confirm });
      assert.equal(confirmed.status, 200, confirmed.body);
      assert.match(readFileSync(config, 'utf8'), /reject_score: 10 #/);
      const again = await post('/api/apply/confirm', { 'x-csrf-token': token }, { confirm });
      assert.equal(again.status, 409, 'a confirmation is good for one Apply');
    } finally {
      await page.close();
      assert.equal(await d.stop(), 0);
    }
  });
});
