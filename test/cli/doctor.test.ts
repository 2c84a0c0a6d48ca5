/** checkid doctor: every check against local fixtures (a test DNS server, temp dirs, a fake main.cf). */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  checkClock,
  checkDns,
  checkIpv6,
  checkMta,
  checkSocket,
  type DoctorOptions,
  formatFindings,
  milterList,
  parseMainCf,
  RELEASE_DATE,
  sameMilter,
  SPAMHAUS_TEST,
} from '../../src/cli/doctor.ts';
import { type Config, defaultConfig } from '../../src/policy/config.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { CHECKID_BIN, tempDir } from '../support/fixtures.ts';

let refusing: DnsTestServer;
let good: DnsTestServer;
let silent: dgram.Socket;
let silentAddress: string;

before(async () => {
  // a resolver Spamhaus refuses: its answer for the test point is 127.255.255.254
  refusing = await startDnsServer({ zone: { [SPAMHAUS_TEST]: [{ A: '127.255.255.254' }] } });
  good = await startDnsServer({ zone: { [SPAMHAUS_TEST]: [{ A: '127.0.0.2' }, { A: '127.0.0.4' }] } });
  // a name server that never answers
  silent = dgram.createSocket('udp4');
  silent.bind(0, '127.0.0.1');
  await once(silent, 'listening');
  silentAddress = `127.0.0.1:${silent.address().port}`;
});
after(async () => {
  await refusing.close();
  await good.close();
  silent.close();
});

function options(mutate?: (c: Config) => void, extra: Partial<DoctorOptions> = {}): DoctorOptions {
  const config = defaultConfig();
  // long enough for a loaded machine; the silent server costs this once per test
  config.resolver.timeoutMs = 1000;
  config.resolver.attempts = 1;
  mutate?.(config);
  return { config, configPath: '/etc/checkid/checkid.yaml', ...extra };
}

test('spamhaus: a resolver answered 127.255.255.254 fails when zen is configured, warns when not', async () => {
  const used = await checkDns(
    options((c) => {
      c.prescreen.dnsbl = [{ zone: 'zen.spamhaus.org', weight: 1, type: 'ip' } as Config['prescreen']['dnsbl'][number]];
    }, { resolverServers: [refusing.address] }),
  );
  assert.equal(used.length, 2);
  assert.equal(used[0]!.check, 'dns');
  assert.equal(used[0]!.status, 'ok');
  assert.match(used[0]!.message, new RegExp(`^name server ${refusing.address} answers \\(NXDOMAIN in \\d+ ms\\)$`));
  assert.deepEqual(used[1], {
    check: 'spamhaus',
    status: 'fail',
    message: `Spamhaus refuses the resolver ${refusing.address}: 2.0.0.127.zen.spamhaus.org gives 127.255.255.254 (queries through a public or open resolver are refused); zen.spamhaus.org in prescreen.dnsbl will never list anyone`,
    fix: 'run your own recursive resolver (unbound, not forwarding to a public one) and set resolver.servers: [127.0.0.1], or use Spamhaus DQS zones with a key',
  });
  const unused = await checkDns(options(undefined, { resolverServers: [refusing.address] }));
  assert.equal(unused[1]!.status, 'warn');
  assert.match(unused[1]!.message, /Spamhaus zones would not work if you add them$/);
});

test('spamhaus: the test point listed is ok; NXDOMAIN for it is a warning', async () => {
  const ok = await checkDns(options(undefined, { resolverServers: [good.address] }));
  assert.deepEqual(ok[1], { check: 'spamhaus', status: 'ok', message: `Spamhaus answers through ${good.address}: 2.0.0.127.zen.spamhaus.org is listed (127.0.0.2, 127.0.0.4)` });
  const nx = await startDnsServer({ zone: {} });
  try {
    const r = await checkDns(options(undefined, { resolverServers: [nx.address] }));
    assert.equal(r[1]!.status, 'warn');
    assert.match(r[1]!.message, /answers NXDOMAIN through .*: its test point must be listed/);
  } finally {
    await nx.close();
  }
});

test('dns: a name server that does not answer fails, one that refuses fails, each server on its own', async () => {
  const r = await checkDns(options(undefined, { resolverServers: [silentAddress, good.address] }));
  assert.deepEqual(
    r.map((f) => [f.check, f.status]),
    [
      ['dns', 'fail'],
      ['dns', 'ok'],
      ['spamhaus', 'ok'],
    ],
  );
  assert.equal(r[0]!.message, `name server ${silentAddress} does not answer (1 try of 1000 ms): every check that needs DNS will tempfail`);
  assert.match(r[0]!.fix!, /unbound/);
  const alone = await checkDns(options(undefined, { resolverServers: [silentAddress] }));
  assert.deepEqual(alone[1], { check: 'spamhaus', status: 'skip', message: `not checked: no name server answers (${silentAddress})` });
  const refuses = await startDnsServer({ zone: {}, refused: ['.'] });
  try {
    const x = await checkDns(options(undefined, { resolverServers: [refuses.address] }));
    assert.equal(x[0]!.status, 'fail');
    assert.match(x[0]!.message, new RegExp(`^name server ${refuses.address} answers REFUSED`));
    assert.match(x[0]!.fix!, /allow recursion/);
  } finally {
    await refuses.close();
  }
  // the config's servers are used when --resolver is not given
  const fromConfig = await checkDns(
    options((c) => {
      c.resolver.servers = [good.address];
    }),
  );
  assert.equal(fromConfig[0]!.status, 'ok');
});

test('ipv6: a UDP socket that cannot connect is a warning with the error; one that can is ok', async () => {
  const failing = await checkIpv6(options(undefined, { udp6Connect: async () => 'ENETUNREACH' }));
  assert.equal(failing.status, 'warn');
  assert.match(failing.message, /^no IPv6 connectivity: a UDP socket cannot connect to 2001:500:2f::f \(ENETUNREACH\)/);
  assert.match(failing.fix!, /AAAA/);
  // the real probe, on the loopback address (present wherever IPv6 is on)
  const hasLoopback6 = Object.values(networkInterfaces()).some((list) => list?.some((a) => a.family === 'IPv6' && a.address === '::1'));
  const real = await checkIpv6(options(undefined, { ipv6Probe: '::1' }));
  assert.equal(real.status, hasLoopback6 ? 'ok' : 'warn', real.message);
});

test('socket: a 0777 directory warns (fails when Sendmail is installed); a safe path is ok; TCP and off are skipped', () => {
  const dir = join(tempDir('checkid-doctor-'), 'open');
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  const sock = `unix:${dir}/milter.sock`;
  const noSendmail = join(dir, 'no-sendmail.cf');
  const warn = checkSocket(options((c) => (c.milter.listen = sock), { sendmailConfig: noSendmail }));
  assert.equal(warn.status, 'warn');
  assert.equal(warn.message, `${dir} (mode 0777) on the path of ${dir}/milter.sock is group- or world-writable: Sendmail refuses the socket ("unsafe: Group/World writable directory"); Postfix does not mind`);
  assert.match(warn.fix!, /0750 directory.*checkid integrate sendmail --config \/etc\/checkid\/checkid\.yaml/);
  const sendmailCf = join(dir, 'sendmail.cf');
  writeFileSync(sendmailCf, 'V10/Berkeley\n');
  assert.equal(checkSocket(options((c) => (c.milter.listen = sock), { sendmailConfig: sendmailCf })).status, 'fail');
  // a socket right under / has no writable directory above it (the file itself need not exist)
  const safe = checkSocket(options((c) => (c.milter.listen = 'unix:/checkid-doctor-test.sock')));
  assert.deepEqual(safe, { check: 'socket', status: 'ok', message: 'no group- or world-writable directory on the path of /checkid-doctor-test.sock' });
  const missing = checkSocket(options((c) => (c.milter.listen = `unix:${dir}/nope/milter.sock`)));
  assert.equal(missing.status, 'warn');
  assert.match(missing.message, /does not exist: checkid milter cannot start$/);
  assert.equal(checkSocket(options()).status, 'skip');
  assert.equal(checkSocket(options((c) => (c.milter.listen = ''))).status, 'skip');
});

test('main.cf parsing: continuation lines, comments, $name and $' + '{name}, { } milter groups', () => {
  const cf = parseMainCf(`# comment\ncheckid = inet:127.0.0.1:8891\nsmtpd_milters = $checkid,\n   { unix:/run/other.sock, default_action=accept }\n  # a comment, not a continuation\nother = \${checkid}x\n`);
  assert.equal(cf.get('smtpd_milters'), 'inet:127.0.0.1:8891, { unix:/run/other.sock, default_action=accept }');
  assert.equal(cf.get('other'), 'inet:127.0.0.1:8891x');
  assert.deepEqual(milterList(cf.get('smtpd_milters')!), ['inet:127.0.0.1:8891', 'unix:/run/other.sock']);
  assert.ok(sameMilter('inet:localhost:8891', 'inet:127.0.0.1:8891'));
  assert.ok(sameMilter('inet:127.0.0.1:8891', 'inet:0.0.0.0:8891'));
  assert.ok(!sameMilter('inet:127.0.0.1:8892', 'inet:127.0.0.1:8891'));
  // a chrooted smtpd: its paths are below /var/spool/postfix; relative ones too
  assert.ok(sameMilter('unix:/checkid/milter.sock', 'unix:/var/spool/postfix/checkid/milter.sock'));
  assert.ok(sameMilter('unix:private/checkid', 'unix:/var/spool/postfix/private/checkid'));
  assert.ok(!sameMilter('unix:/run/a.sock', 'inet:127.0.0.1:8891'));
});

test('mta: main.cf that asks checkid is ok (milter or policy); one that does not fails with the line to add', () => {
  const dir = tempDir('checkid-doctor-mta-');
  const cf = (text: string) => {
    const p = join(dir, `main-${Math.random().toString(36).slice(2)}.cf`);
    writeFileSync(p, text);
    return p;
  };
  const ok = checkMta(options(undefined, { postfixConfig: cf('smtpd_milters = inet:127.0.0.1:8891\nnon_smtpd_milters = $smtpd_milters\n') }));
  assert.equal(ok.status, 'ok');
  assert.match(ok.message, /asks checkid's milter: smtpd_milters = inet:127\.0\.0\.1:8891$/);
  const wrong = cf('smtpd_milters = inet:127.0.0.1:11332\n');
  const bad = checkMta(options(undefined, { postfixConfig: wrong }));
  assert.deepEqual(bad, {
    check: 'mta',
    status: 'fail',
    message: `Postfix (${wrong}) does not ask checkid: smtpd_milters = inet:127.0.0.1:11332, but checkid's milter listens on inet:127.0.0.1:8891`,
    fix: 'add smtpd_milters = inet:127.0.0.1:8891 to main.cf and run postfix reload; checkid integrate postfix --config /etc/checkid/checkid.yaml prints the whole set-up',
  });
  const policy = checkMta(
    options(
      (c) => {
        c.milter.listen = '';
        c.policy.listen = 'inet:127.0.0.1:9998';
      },
      { postfixConfig: cf('smtpd_recipient_restrictions = permit_mynetworks,\n  reject_unauth_destination,\n  check_policy_service inet:127.0.0.1:9998\n') },
    ),
  );
  assert.equal(policy.status, 'ok');
  assert.match(policy.message, /policy server: check_policy_service inet:127\.0\.0\.1:9998$/);
  const nothing = checkMta(options((c) => (c.milter.listen = ''), { postfixConfig: wrong }));
  assert.equal(nothing.status, 'warn');
  assert.equal(checkMta(options(undefined, { postfixConfig: join(dir, 'absent.cf') })).status, 'fail');
  const skip = checkMta(options(undefined, { postfixDefault: join(dir, 'absent.cf') }));
  assert.equal(skip.status, 'skip');
  assert.match(skip.message, /^no Postfix here .*checkid integrate postfix\|sendmail\|exim\|qmail\|exchange$/);
});

test('clock: before the release date fails; after it is ok, and the offset is skipped without --time-url', async () => {
  const early = await checkClock(options(undefined, { now: () => Date.parse('2020-01-01T00:00:00Z') }));
  assert.equal(early[0]!.status, 'fail');
  assert.match(early[0]!.message, new RegExp(`^the system clock says 2020-01-01T00:00:00.000Z, before this checkid was released \\(${RELEASE_DATE}\\)`));
  const fine = await checkClock(options());
  assert.deepEqual(
    fine.map((f) => [f.check, f.status]),
    [
      ['clock', 'ok'],
      ['clock-offset', 'skip'],
    ],
  );
});

test('clock offset: measured against a local HTTP server Date header; an hour off fails, none is a warning', async () => {
  let date: string | null = null;
  const server = createServer((_req, res) => {
    if (date === null) res.sendDate = false;
    else res.setHeader('date', date);
    res.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  try {
    const now = Date.parse('2026-12-01T12:00:00Z');
    date = new Date(now - 3600_000).toUTCString();
    const off = await checkClock(options(undefined, { timeUrl: url, now: () => now }));
    assert.equal(off[1]!.status, 'fail');
    assert.match(off[1]!.message, new RegExp(`^the system clock is 3600 s ahead of ${url} \\(its Date header, to the second; round trip 0 ms\\)$`));
    date = new Date(now + 30_000).toUTCString();
    const warn = await checkClock(options(undefined, { timeUrl: url, now: () => now }));
    assert.equal(warn[1]!.status, 'warn');
    assert.match(warn[1]!.message, /^the system clock is 30 s behind/);
    date = new Date(now).toUTCString();
    assert.equal((await checkClock(options(undefined, { timeUrl: url, now: () => now })))[1]!.status, 'ok');
    date = null;
    const none = await checkClock(options(undefined, { timeUrl: url, now: () => now }));
    assert.equal(none[1]!.status, 'warn');
    assert.match(none[1]!.message, /sent no usable Date header/);
  } finally {
    server.close();
  }
});

test('the report: one line per finding, the fix below, a summary and the integrate pointer', () => {
  const text = formatFindings(
    [
      { check: 'dns', status: 'ok', message: 'name server 127.0.0.1:53 answers' },
      { check: 'spamhaus', status: 'fail', message: 'refused', fix: 'run unbound' },
      { check: 'mta', status: 'skip', message: 'no Postfix here' },
    ],
    'checkid doctor (config: x.yaml)',
  );
  assert.equal(
    text,
    [
      'checkid doctor (config: x.yaml)',
      '',
      'ok    dns       name server 127.0.0.1:53 answers',
      'FAIL  spamhaus  refused',
      '                fix: run unbound',
      'skip  mta       no Postfix here',
      '',
      '1 failed, 0 warning(s), 1 ok, 1 not checked.',
      'MTA set-up: checkid integrate postfix|sendmail|exim|qmail|exchange [--config FILE] prints what to add to your MTA.',
      '',
    ].join('\n'),
  );
});

test('checkid doctor: exit 1 when a check fails, 0 when none does, 2 for usage errors, 3 for a bad config', async () => {
  const dir = tempDir('checkid-doctor-cli-');
  const mainCf = join(dir, 'main.cf');
  writeFileSync(mainCf, 'smtpd_milters = inet:127.0.0.1:8891\n');
  const config = join(dir, 'checkid.yaml');
  writeFileSync(config, 'resolver:\n  timeout_ms: 1000\n  attempts: 1\nmilter:\n  listen: inet:127.0.0.1:8891\n');
  // asynchronously: the test DNS servers live in this process
  const run = (...args: string[]) =>
    new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [CHECKID_BIN, 'doctor', '--config', config, '--postfix-config', mainCf, ...args], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ status: err ? Number((err as { code?: number }).code) : 0, stdout, stderr });
      });
    });

  const passing = await run('--resolver', refusing.address, '--json');
  assert.equal(passing.status, 0, passing.stderr); // Spamhaus unused by this config: a warning only
  const report = JSON.parse(passing.stdout) as { ok: boolean; findings: Array<{ check: string; status: string }> };
  assert.equal(report.ok, true);
  assert.deepEqual(
    report.findings.map((f) => f.check),
    ['dns', 'spamhaus', 'ipv6', 'socket', 'mta', 'clock', 'clock-offset'],
  );
  assert.equal(report.findings.find((f) => f.check === 'spamhaus')!.status, 'warn');
  assert.equal(report.findings.find((f) => f.check === 'mta')!.status, 'ok');

  const timeout = await run('--resolver', silentAddress);
  assert.equal(timeout.status, 1);
  assert.match(timeout.stdout, new RegExp(`^FAIL  dns +name server ${silentAddress} does not answer`, 'm'));
  assert.match(timeout.stdout, /^MTA set-up: checkid integrate postfix\|sendmail\|exim\|qmail\|exchange/m);

  assert.equal((await run('--bogus')).status, 2);
  writeFileSync(config, 'resolver:\n  timeout_ms: nope\n');
  assert.equal((await run()).status, 3);
});
