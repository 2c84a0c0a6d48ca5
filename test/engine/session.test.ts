/** The staged session as adapters drive it: several messages, RSET, a second EHLO, bad input. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine, staticPolicy } from '../../src/engine/engine.ts';
import { SessionError } from '../../src/engine/session.ts';
import { type Config, defaultConfig } from '../../src/policy/config.ts';
import { seedZone } from '../support/fixtures.ts';
import { MemoryResolver, type ZoneData } from '../support/zone.ts';

function engine(mutate?: (c: Config) => void, extraZone: ZoneData = {}) {
  const resolver = new MemoryResolver({ ...seedZone(), ...extraZone });
  const config = defaultConfig();
  config.authservId = 'mx.receiver.example';
  config.ratings.registries = [{ zone: 'registry.example' }];
  mutate?.(config);
  return new Engine({ resolver, policy: staticPolicy(config, resolver) });
}

test('two messages on one connection: the second does not inherit the first one\'s facts', async () => {
  const s = engine().session('192.0.2.1');
  await s.connect();
  await s.helo('mx.example.com');
  const bad = await s.mailFrom('x@example.net');
  assert.equal(bad.action, 'REJECT');
  s.resetMessage(); // RSET
  assert.equal(s.facts.spfMailFrom, undefined);
  const good = await s.mailFrom('<a@example.com>');
  assert.equal(good.action, 'CONTINUE');
  assert.equal(s.facts.envelope.mailFrom, 'a@example.com');
  await s.rcpt('b@example.org');
  s.header('Authentication-Results', 'mx.receiver.example; spf=pass');
  const end = await s.endOfMessage();
  assert.equal(end.action, 'FILTER');
  assert.deepEqual(end.removeHeaders.map((h) => h.occurrence), [1]);
  // the next message starts clean
  await s.mailFrom('a@example.com');
  assert.deepEqual(s.facts.envelope.rcpt, []);
  assert.deepEqual(s.facts.forgedAuthResults, []);
});

test('a second EHLO resets the identity taken from the first one (RFC 5321 §4.1.4)', async () => {
  const s = engine().session('192.0.2.1');
  await s.connect();
  await s.helo('example.com');
  await s.mailFrom('a@example.com');
  assert.equal(s.facts.identity?.domain, 'example.com');
  const second = await s.helo('example.org');
  assert.equal(second.action, 'CONTINUE');
  assert.equal(s.facts.identity?.domain, 'example.org');
  assert.equal(s.facts.envelope.mailFrom, undefined);
  // example.org does not authorize 192.0.2.1: decided at MAIL, once the client could still send ID
  const mail = await s.mailFrom('a@example.com');
  assert.equal(mail.action, 'REJECT');
  assert.equal(mail.reply.text, "Sending MTA '192.0.2.1' not authorized by 'example.org'");
});

test('the HELO identity is authenticated and rated without MAIL FROM (decided at RCPT)', async () => {
  const e = engine();
  const r = await e.checkID({ ip: '192.0.2.1', helo: 'example.com', rcpt: ['a@b.example'] });
  assert.equal(r.action, 'ACCEPT');
  assert.equal(r.verdict.stage, 'rcpt');
  assert.equal(r.headers.find((h) => h.label === 'Authent:')?.text, '192.0.2.1 example.com SPF1 PASS ratings=S1:A,M2:A,H1:B');
});

test('an ID command overrides the HELO identity', async () => {
  const s = engine().session('192.0.2.1');
  await s.connect();
  await s.helo('example.com');
  const v = await s.id('example.net');
  assert.equal(v.action, 'REJECT');
  assert.equal(s.facts.identity?.source, 'id');
});

test('per-recipient verdicts do not depend on recipient order', async () => {
  const e = engine((c) => {
    c.ratings.recipients = [{ match: ['strict@example.org'], accept: null, reject: { max: 9 } }];
  });
  const a = await e.checkID({ ip: '192.0.2.1', id: 'example.com', rcpt: ['strict@example.org', 'normal@example.org'] });
  const b = await e.checkID({ ip: '192.0.2.1', id: 'example.com', rcpt: ['normal@example.org', 'strict@example.org'] });
  assert.equal(a.action, 'ACCEPT');
  assert.equal(b.action, 'ACCEPT');
  const byRcpt = (r: typeof a) => Object.fromEntries(r.recipients.map((x) => [x.rcpt, x.verdict.action]));
  assert.deepEqual(byRcpt(a), { 'strict@example.org': 'REJECT', 'normal@example.org': 'ACCEPT' });
  assert.deepEqual(byRcpt(a), byRcpt(b));
});

test('sender-controlled text never puts a line break into a reply or header', async () => {
  const e = engine(
    (c) => {
      c.helo.rejectInvalid = true;
    },
    { 'exp.example': [{ TXT: 'v=spf1 -all exp=why.exp.example' }], 'why.exp.example': [{ TXT: '%{l} is not welcome' }] },
  );
  await assert.rejects(() => e.checkID({ ip: '192.0.2.1', helo: 'bad\r\n250 injected' }), SessionError);
  await assert.rejects(() => e.checkID({ ip: '192.0.2.1', mailFrom: 'a\r\n250-x@example.net' }), SessionError);
  const r = await e.checkID({ ip: '192.0.2.1', mailFrom: 'a%0d%0a@exp.example' });
  assert.equal(r.action, 'REJECT');
  assert.ok(!/[\r\n]/.test(r.reply.text), r.reply.text);
  const invalid = await e.checkID({ ip: '192.0.2.1', helo: 'not_a name' });
  assert.equal(invalid.reply.code, 501);
  assert.equal(invalid.reply.xcode, '5.5.2');
});

test('an ID that is not a domain name is refused as bad input', async () => {
  await assert.rejects(() => engine().checkID({ ip: '192.0.2.1', id: 'ex ample.com' }), /not a fully qualified domain name/);
  await assert.rejects(() => engine().checkID({ ip: '192.0.2.1', id: '..' }), SessionError);
});

test('block replies: 554 at connect, 550 for MAIL/RCPT-stage refusals', async () => {
  const e = engine((c) => {
    c.prescreen.block = ['192.0.2.66', 'spam.example'];
  });
  const atConnect = await e.checkID({ ip: '192.0.2.66' });
  assert.equal(atConnect.reply.code, 554);
  const atMail = await e.checkID({ ip: '192.0.2.1', mailFrom: 'x@spam.example' });
  assert.equal(atMail.action, 'REJECT');
  assert.equal(atMail.reply.code, 550);
  assert.equal(atMail.verdict.stage, 'mail');
});

test('an authenticated domain on the allow list is accepted; a forged one is not', async () => {
  const e = engine((c) => {
    c.prescreen.allow = ['example.com', 'example.net'];
    c.identity.rejectFail = false;
    c.spf.rejectFail = false;
  });
  const good = await e.checkID({ ip: '192.0.2.1', mailFrom: 'a@example.com' });
  assert.equal(good.action, 'ACCEPT');
  assert.equal(good.verdict.reason, 'local-allow');
  const forged = await e.checkID({ ip: '192.0.2.1', mailFrom: 'a@example.net' });
  assert.equal(forged.action, 'CONTINUE');
});

test('DNS trouble never rejects: an unanswered allow list or rating service turns a reject into TEMPFAIL', async () => {
  const lists = engine(
    (c) => {
      c.prescreen.dnsbl = [
        { zone: 'bl.example', weight: 2, type: 'ip' },
        { zone: 'wl.example', weight: -2, type: 'ip' },
      ];
    },
    { '5.113.0.203.bl.example': [{ A: '127.0.0.2' }], '5.113.0.203.wl.example': ['SERVFAIL'] },
  );
  const r = await lists.checkID({ ip: '203.0.113.5' });
  assert.equal(r.action, 'TEMPFAIL');
  assert.equal(r.reply.xcode, '4.4.3');

  const ratings = engine(
    (c) => {
      c.ratings.registries = [{ zone: 'registry.example' }, { zone: 'down.example' }];
      c.ratings.reject = { max: 2 };
    },
    { 'example.org.down.example': ['TIMEOUT'] },
  );
  const r2 = await ratings.checkID({ ip: '203.0.113.9', id: 'example.org' });
  assert.equal(r2.action, 'TEMPFAIL');
});

test('a slow check gives TEMPFAIL at the deadline, but the local lists still decide', async () => {
  const slow = {
    query: () => new Promise<never>(() => {}),
  };
  const config = defaultConfig();
  config.deadlineMs = 100;
  config.prescreen.block = ['192.0.2.66'];
  const e = new Engine({ resolver: slow, policy: staticPolicy(config, slow) });
  const timedOut = await e.checkID({ ip: '192.0.2.1' });
  assert.equal(timedOut.action, 'TEMPFAIL');
  assert.equal(timedOut.reply.xcode, '4.4.3');
  const blocked = await e.checkID({ ip: '192.0.2.66' });
  assert.equal(blocked.action, 'REJECT');
});

test('a hook that turns a reject into ACCEPT gets the headers an ACCEPT carries', async () => {
  const resolver = new MemoryResolver(seedZone());
  const config = defaultConfig();
  config.authservId = 'mx.receiver.example';
  const e = new Engine({ resolver, policy: staticPolicy(config, resolver, ({ verdict }) => (verdict.action === 'REJECT' ? { action: 'ACCEPT' } : undefined)) });
  const r = await e.checkID({ ip: '192.0.2.1', id: 'example.net' });
  assert.equal(r.action, 'ACCEPT');
  assert.equal(r.reply.code, 250);
  assert.deepEqual(r.headers.map((h) => h.label), ['Authentication-Results:', 'Authent:']);
  assert.equal(r.headers[1]!.text, '192.0.2.1 example.net SPF1 FAIL');
});
