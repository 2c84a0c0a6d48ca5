/**
 * Running checkid, end to end, as a postmaster would (issue #7):
 *
 *   1. the daemon starts with the README's command (`npx checkid serve --config F --resolver R`);
 *      the SIQ reputation it asks is checkid's own SIQ server (`checkid siq serve`, an account
 *      registered for 127.0.0.1 with `checkid siq account add`);
 *   2. mail goes through a real Postfix (the lab's private instance) whose smtpd_milters points
 *      at the daemon's milter; the client presents itself as 192.0.2.1 with XCLIENT;
 *   3. the verdict shows in the mail-log line on stdout, in /metrics and live on the dashboard
 *      (real headless Chromium);
 *   4. on the dashboard the postmaster tries the SIQ reject threshold at the score that message
 *      got, sees the what-if say it would have been rejected, applies it and confirms;
 *   5. the next message from the same sender is refused by Postfix with checkid's 550 5.7.1,
 *      decided by the new threshold, and that verdict too is in the log, the metrics and the page.
 *
 * Needs the lab's Postfix (scripts/lab/install.sh) and Chromium (scripts/browser/install.sh);
 * without them it skips loudly, and under CI it fails instead.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { browserSkip, launchBrowser } from '../support/browser.ts';
import { type Daemon, runCheckid, startDaemon } from '../support/daemon.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { seedZone, tempDir } from '../support/fixtures.ts';
import { freePort, labSkip, REPO, requireLab } from '../support/lab/lab.ts';
import type { RunningMta } from '../support/lab/mta.ts';
import { startPostfix } from '../support/lab/postfix.ts';
import { type Sink, startSink } from '../support/lab/sink.ts';
import { message, SmtpClient, type TransactionResult, transaction } from '../support/smtp-client.ts';

const skip = labSkip('postfix') || browserSkip();

let dns: DnsTestServer;
let siqServer: Daemon;
let daemon: Daemon;
let sink: Sink;
let postfix: RunningMta;
let browser: Browser;
let listening: { milter: string; http: string; dashboard: string; pid: number };
let config: string;

before(async () => {
  if (skip) return;
  requireLab('postfix');
  const dir = tempDir('checkid-e2e-');
  dns = await startDnsServer({ zone: seedZone() });

  // checkid's own SIQ server, with the gateway's source address registered to an account
  const siqDb = join(dir, 'siq.db');
  const add = await runCheckid(['siq', 'account', 'add', '--email', 'postmaster@receiver.example', '--ip', '127.0.0.1', '--db', siqDb]);
  assert.equal(add.code, 0, add.stderr);
  const siqPort = await freePort();
  siqServer = await startDaemon(['siq', 'serve', '--listen', `127.0.0.1:${siqPort}`, '--db', siqDb, '--resolver', dns.address], { cwd: REPO, timeoutMs: 60_000 });

  // the gateway: milter for Postfix, HTTP API (metrics), dashboard; the README's command
  config = join(dir, 'checkid.yaml');
  writeFileSync(
    config,
    [
      '# checkid for the end-to-end test',
      'authserv_id: mx.receiver.example',
      `state_dir: ${dir}/state`,
      'milter:',
      `  listen: inet:127.0.0.1:${await freePort()}`,
      'http:',
      '  listen: 127.0.0.1:0',
      'dashboard:',
      '  listen: 127.0.0.1:0',
      'siq:',
      `  servers: [127.0.0.1:${siqPort}]`,
      '  timeout_ms: 2000',
      '  tag_score: 50      # tag at or below',
      '  reject_score: -1   # off: observe first, as milter-siq advised',
      '',
    ].join('\n'),
  );
  daemon = await startDaemon(['checkid', 'serve', '--config', config, '--resolver', dns.address], { cmd: ['npx'], cwd: REPO, timeoutMs: 60_000 });
  listening = daemon.listening as unknown as typeof listening;
  assert.match(listening.milter, /^inet:127\.0\.0\.1:\d+$/);

  sink = await startSink();
  postfix = await startPostfix({ sinkPort: sink.port, milter: listening.milter, extra: ['relay_domains = dest.example'] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await postfix?.stop();
  await sink?.close();
  if (daemon) {
    // SIGTERM to checkid itself (the pid its log gives), as systemd would; npx passes the status on
    if (listening?.pid && daemon.child.exitCode === null) process.kill(listening.pid, 'SIGTERM');
    assert.equal(await daemon.ended(60_000), 0, 'checkid serve drains and exits 0 on SIGTERM');
  }
  await siqServer?.stop();
  await dns?.close();
});

/** One message through Postfix from 192.0.2.1 (XCLIENT), MAIL FROM news@example.com. */
async function sendThroughPostfix(tag: string): Promise<TransactionResult> {
  const client = await SmtpClient.connect(postfix.port, { timeoutMs: 30_000 });
  try {
    await client.ehlo('lab-client.example');
    await client.xclient({ ADDR: '192.0.2.1', NAME: '[UNAVAILABLE]', HELO: 'mx.example.com' });
    await client.ehlo('mx.example.com');
    return await transaction(client, {
      from: 'news@example.com',
      to: ['postmaster@dest.example'],
      message: message({ from: 'news@example.com', to: 'postmaster@dest.example', headers: [`X-E2E: ${tag}`] }),
    });
  } finally {
    await client.quit();
  }
}

/** The mail-log line of the verdict for 192.0.2.1 whose action matches. */
function mailLogLine(action: string): Promise<string> {
  return daemon.waitFor(`a mail-log line with action=${action}`, (line) => line.startsWith('checkid: client=[192.0.2.1]') && line.includes(` action=${action} `), 60_000);
}

async function metric(pattern: RegExp): Promise<string | undefined> {
  const text = await (await fetch(`http://${listening.http}/metrics`)).text();
  return text.split('\n').find((l) => pattern.test(l));
}

test('README daemon + real Postfix + SIQ server: log, metrics, dashboard; a threshold applied from the dashboard decides the next message', { skip }, async () => {
  // 1. the first message is delivered (FILTER: the default policy filters senders nobody vouches
  //    for), with checkid's headers on top, with checkid's headers on top
  const first = await sendThroughPostfix('first');
  assert.equal(first.final.code, 250, first.final.raw.join('\n'));
  const delivered = await sink.find('X-E2E: first');
  assert.match(delivered.headerLines.join('\n'), /Authentication-Results: mx\.receiver\.example;/);

  // 2. the mail-log line tells the SIQ score the server gave (no threshold is on yet)
  const line = await mailLogLine('FILTER');
  assert.match(line, / from=<news@example\.com> to=<postmaster@dest\.example> /);
  const score = Number(/ siq=(\d+)/.exec(line)?.[1]);
  assert.ok(Number.isInteger(score) && score > 50, `a SIQ score above the tag threshold in: ${line}`);
  assert.match(line, / reason=unknown-sender /);
  assert.match((await metric(/^checkid_verdicts_total\{.*action="FILTER",reason="unknown-sender"\}/)) ?? '', / 1$/);
  assert.match((await metric(/^checkid_siq_answers_total\{kind="score"\}/)) ?? '', / [1-9]\d*$/);

  // 3. the dashboard shows it live; the what-if says a reject threshold at that score would have
  //    rejected it; Apply (confirmed) puts the threshold into the running policy
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    await page.goto(`http://${listening.dashboard}/`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.waitForSelector('#live tbody tr[data-ip="192.0.2.1"][data-action="FILTER"]');
    assert.match((await page.textContent('#live tbody tr[data-ip="192.0.2.1"] td.facts')) ?? '', new RegExp(`siq=${score}\\b`));

    await page.fill('#siqRejectScore', String(score));
    await page.locator('#wi-newly-rejected', { hasText: /^1$/ }).waitFor();
    await page.waitForSelector('#whatif-section:not([aria-busy])');
    assert.equal(await page.textContent('#wi-newly-rejected'), '1');
    await page.click('#apply');
    await page.waitForSelector('#confirm:not([hidden])');
    assert.deepEqual(await page.$$eval('#confirm-changes li', (lis) => lis.map((li) => li.textContent)), [`siq.reject_score: -1 → ${score}`]);
    await page.click('#confirm-yes');
    await page.waitForSelector('#apply-result.ok');
    assert.match(readFileSync(config, 'utf8'), new RegExp(`^ {2}reject_score: ${score} +# off: observe first`, 'm'));
    await daemon.waitFor('the reload', (_l, j) => j?.msg === 'policy reloaded', 60_000);

    // 4. the next message from the same sender: Postfix refuses it with checkid's reply
    const second = await sendThroughPostfix('second');
    assert.equal(second.final.code, 550, second.final.raw.join('\n'));
    assert.match(second.final.raw.join('\n'), new RegExp(`^550[ -]5\\.7\\.1 .*SIQ score ${score} too low`, 'm'));
    const rejected = await mailLogLine('REJECT');
    assert.match(rejected, / reason=siq-reject /);
    assert.match((await metric(/^checkid_verdicts_total\{.*action="REJECT",reason="siq-reject"\}/)) ?? '', / 1$/);
    await page.waitForSelector('#live tbody tr[data-ip="192.0.2.1"][data-action="REJECT"][data-reason="siq-reject"]');
    assert.equal(sink.messages.filter((m) => m.data.includes('X-E2E: second')).length, 0, 'the refused message was not delivered');
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});
