/**
 * Two `checkid siq serve` processes on one real redis-server (siq_server.store: redis): an
 * account added with `checkid siq account add` reaches both, a profile saved on one server's
 * web pages scores the other's UDP answers, and a report sent to one is counted by the other.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SiqClient } from '../../../src/siq/client.ts';
import { sendSiqReport } from '../../../src/siq/report.ts';
import { CHECK_IDS } from '../../../src/siq/server/profile.ts';
import { runCheckid } from '../../support/daemon.ts';
import { tempDir } from '../../support/fixtures.ts';
import { redisForTests, redisSkip } from '../../support/redis.ts';
import { csrfFrom, WebClient } from '../../web/client.ts';
import { addressOf, eventually, siqProcessTests } from './processes.ts';

const PASSWORD = 'marble comet 88 willow';
const skip = redisSkip();

const procs = siqProcessTests();
const testRedis = redisForTests({ skip });

async function score(client: SiqClient, ip: string, domain: string): Promise<{ score: number; text: string } | undefined> {
  const r = await client.query({ ip, domain });
  return r.status === 'answer' ? { score: r.reply.score, text: r.reply.text } : undefined;
}

test('two SIQ servers share accounts, profiles and reports through Redis', { skip }, async () => {
  const dir = tempDir('checkid-siq-redis-');
  const config = join(dir, 'siq.yaml');
  writeFileSync(
    config,
    [
      'redis:',
      `  url: ${testRedis.server.url}`,
      '  prefix: "siqtest:"',
      '  command_timeout_ms: 2000',
      'siq_server:',
      '  store: redis',
      '  http_listen: 127.0.0.1:0',
      '  web_listen: 127.0.0.1:0',
      '',
    ].join('\n'),
  );
  const start = () => procs.start(['siq', 'serve', '--listen', '127.0.0.1:0', '--config', config, '--resolver', procs.dns.address]);
  const a = await start();
  const b = await start();
  assert.match(a.listening['siq-server']!, /, redis redis:\/\/127\.0\.0\.1:\d+\/?$/);
  const udpB = addressOf(b.listening['siq-server'], 'udp');
  const clientB = new SiqClient({ servers: [udpB], cache: false, timeoutMs: 500 });
  try {
    // no account yet: B does not answer 127.0.0.1
    assert.equal(await score(clientB, '192.0.2.10', 'good.example'), undefined);

    // the operator adds the account once, in Redis
    const added = await runCheckid(
      ['siq', 'account', 'add', '--config', config, '--email', 'pm@shared.example', '--ip', '127.0.0.1', '--password-stdin', '--json'],
      { input: `${PASSWORD}\n` },
    );
    assert.equal(added.code, 0, added.stderr);
    const { apiKey } = JSON.parse(added.stdout) as { apiKey: string };
    const first = await eventually(() => score(clientB, '192.0.2.10', 'good.example'), 'B answering the new account');
    assert.match(first.text, /iprev=pass/);
    assert.notEqual(first.score, 27);

    // the postmaster signs in to A's pages and saves a profile: base 23, only iprev, +4 for a pass
    const web = new WebClient(`http://${addressOf(a.listening['siq-server'], 'web')}`);
    const signin = await web.postForm('/signin', { _csrf: csrfFrom((await web.get('/signin')).text), username: 'pm@shared.example', password: PASSWORD });
    assert.equal(signin.status, 303);
    const fields: Record<string, string> = { _csrf: csrfFrom((await web.get('/profile')).text), base: '23', ttl: '60' };
    for (const id of CHECK_IDS) {
      fields[`checks.${id}.pass`] = id === 'iprev' ? '4' : '0';
      fields[`checks.${id}.fail`] = '0';
      fields[`checks.${id}.neutral`] = '0';
    }
    fields['checks.iprev.enabled'] = 'on';
    assert.equal((await web.postForm('/profile', fields)).status, 303);

    // B sees the change through Redis's change counter (within its 1 s poll) and answers with it
    const shared = await eventually(async () => {
      const s = await score(clientB, '192.0.2.10', 'good.example');
      return s?.score === 27 ? s : undefined;
    }, 'B answering with the profile saved on A');
    assert.equal(shared.text, 'iprev=pass');

    // the same account signs in to B's pages and finds the profile there
    const webB = new WebClient(`http://${addressOf(b.listening['siq-server'], 'web')}`);
    const signinB = await webB.postForm('/signin', { _csrf: csrfFrom((await webB.get('/signin')).text), username: 'pm@shared.example', password: PASSWORD });
    assert.equal(signinB.status, 303);
    assert.match((await webB.get('/profile')).text, /name="base"[^>]*value="23"/);

    // reports sent to A count on B: enable reports_ip on A's pages, report 203.0.113.5 rejected to A
    fields['checks.reports_ip.enabled'] = 'on';
    fields['checks.reports_ip.fail'] = '-20';
    fields._csrf = csrfFrom((await web.get('/profile')).text);
    assert.equal((await web.postForm('/profile', fields)).status, 303);
    const sent = await sendSiqReport({
      url: `http://${addressOf(a.listening['siq-server'], 'http')}`,
      apiKey,
      reports: [{ ip: '203.0.113.5', result: 'rejected', count: 5 }],
    });
    assert.deepEqual(sent, { ok: true, recorded: 1, status: 200 });
    const reported = await eventually(async () => {
      const s = await score(clientB, '203.0.113.5', 'good.example');
      return s?.text.includes('reports_ip=fail') ? s : undefined;
    }, 'B scoring the reports A took');
    // base 23, iprev fails for 0 points here, the reports' -20
    assert.equal(reported.score, 3);
  } finally {
    clientB.close();
  }
  // the keys are under the configured prefix
  const keys = (await testRedis.server.command('KEYS', 'siqtest:siqs:account:*')) as string[];
  assert.equal(keys.length, 1);
  assert.equal(await a.stop(), 0);
  assert.equal(await b.stop(), 0);
});
