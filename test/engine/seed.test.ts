import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine, staticPolicy } from '../../src/engine/engine.ts';
import { defaultConfig, loadConfigFile } from '../../src/policy/config.ts';
import { FIXTURES, seedZone } from '../support/fixtures.ts';
import { MemoryResolver } from '../support/zone.ts';

const zone = seedZone();

function engineWith(configFile: string | null, mutate?: (c: ReturnType<typeof defaultConfig>) => void) {
  const resolver = new MemoryResolver(zone);
  const config = configFile ? loadConfigFile(`${FIXTURES}${configFile}`) : defaultConfig();
  mutate?.(config);
  return { engine: new Engine({ resolver, policy: staticPolicy(config, resolver) }), resolver, config };
}

test('seed: example.net does not authorize 192.0.2.1 → REJECT 550 5.7.1, no headers', async () => {
  const { engine } = engineWith('seed-authent.yaml');
  const r = await engine.checkID({ ip: '192.0.2.1', id: 'example.net' });
  assert.equal(r.action, 'REJECT');
  assert.deepEqual(r.reply, { code: 550, xcode: '5.7.1', text: "Sending MTA '192.0.2.1' not authorized by 'example.net'" });
  assert.deepEqual(r.headers, []);
});

test('seed: example.com with ratings S1:A,M2:A,H1:B → ACCEPT with the Authent: header, to the letter', async () => {
  const { engine } = engineWith('seed-authent.yaml');
  const r = await engine.checkID({ ip: '192.0.2.1', id: 'example.com' });
  assert.equal(r.action, 'ACCEPT');
  assert.deepEqual(r.reply, { code: 250, xcode: '', text: 'Sender OK' });
  assert.deepEqual(r.headers, [{ label: 'Authent:', text: '192.0.2.1 example.com SPF1 PASS ratings=S1:A,M2:A,H1:B' }]);
});

test('default headers: Authentication-Results first (directly above the message), then Authent:', async () => {
  const { engine } = engineWith('seed-authent.yaml', (c) => {
    c.headers = ['authentication-results', 'authent'];
  });
  const r = await engine.checkID({ ip: '192.0.2.1', id: 'example.com', helo: 'mx.example.com', mailFrom: 'a@example.com' });
  assert.equal(r.action, 'ACCEPT');
  assert.equal(r.headers.length, 2);
  assert.equal(r.headers[0]!.label, 'Authentication-Results:');
  const ar = r.headers[0]!.text.replace(/\r\n\t/g, ' ');
  // ACCEPT came at the ID stage, before MAIL: the A-R says what was known then
  assert.equal(ar, 'mx.receiver.example; iprev=pass (mx.example.com) policy.iprev=192.0.2.1; spf=pass (192.0.2.1 is authorized by mx.example.com) smtp.helo=mx.example.com');
  assert.equal(r.headers[1]!.label, 'Authent:');
});

test('only part of the envelope known: no ID and no HELO → CONTINUE (the message stages may decide)', async () => {
  const { engine } = engineWith('seed-authent.yaml');
  const r = await engine.checkID({ ip: '192.0.2.1' });
  assert.equal(r.action, 'CONTINUE');
  assert.equal(r.verdict.stage, 'connect');
});

test('unknown sender with the message → FILTER with headers (tag, let the operator observe)', async () => {
  const { engine } = engineWith(null, (c) => {
    c.authservId = 'mx.receiver.example';
  });
  const r = await engine.checkID({ ip: '192.0.2.1', helo: 'mx.example.com', mailFrom: 'a@example.com', rcpt: ['b@example.org'], headers: 'Subject: hi\r\n', body: 'hello\r\n' });
  assert.equal(r.action, 'FILTER');
  assert.equal(r.verdict.stage, 'eom');
  assert.deepEqual(r.headers.map((h) => h.label), ['Authentication-Results:', 'Authent:']);
  assert.equal(r.headers[1]!.text, '192.0.2.1 mx.example.com SPF1 PASS');
});

test('DNS trouble on the identity → TEMPFAIL 451 4.4.3, never a reject', async () => {
  const { engine } = engineWith('seed-authent.yaml');
  const r = await engine.checkID({ ip: '192.0.2.1', id: 'temp.example' });
  assert.equal(r.action, 'TEMPFAIL');
  assert.equal(r.reply.code, 451);
  assert.equal(r.reply.xcode, '4.4.3');
});

test('softfail is not a forgery under a strict policy: no reject', async () => {
  const { engine } = engineWith('seed-authent.yaml');
  const r = await engine.checkID({ ip: '192.0.2.1', id: 'softfail.example' });
  assert.equal(r.action, 'CONTINUE');
});

test('MAIL FROM SPF fail → REJECT 550 5.7.23', async () => {
  const { engine } = engineWith(null);
  const r = await engine.checkID({ ip: '192.0.2.1', mailFrom: 'someone@example.net' });
  assert.equal(r.action, 'REJECT');
  assert.equal(r.reply.code, 550);
  assert.equal(r.reply.xcode, '5.7.23');
});

test('rating thresholds: an operator-chosen reject threshold rejects a badly rated, authenticated sender', async () => {
  const { engine } = engineWith('seed-authent.yaml', (c) => {
    c.ratings.reject = { max: 2 };
  });
  const r = await engine.checkID({ ip: '203.0.113.9', id: 'example.org' });
  assert.equal(r.action, 'REJECT');
  assert.equal(r.reply.text, "Recipient won't accept mail from 'example.org' based on its current reputation");
});

test('per-recipient thresholds are applied at RCPT', async () => {
  const { engine } = engineWith('seed-authent.yaml', (c) => {
    c.ratings.recipients = [{ match: ['strict@example.org'], accept: { average: 9, min: 9 } }];
  });
  const lax = await engine.checkID({ ip: '192.0.2.1', id: 'example.com', rcpt: ['someone@example.org'] });
  assert.equal(lax.action, 'ACCEPT');
  assert.equal(lax.verdict.stage, 'rcpt');
  const strict = await engine.checkID({ ip: '192.0.2.1', id: 'example.com', rcpt: ['strict@example.org'] });
  assert.equal(strict.action, 'CONTINUE');
});

test('local block list rejects at connect; allow list accepts', async () => {
  const { engine } = engineWith(null, (c) => {
    c.prescreen.block = ['198.51.100.0/24'];
    c.prescreen.allow = ['192.0.2.7'];
  });
  const blocked = await engine.checkID({ ip: '198.51.100.20' });
  assert.equal(blocked.action, 'REJECT');
  assert.equal(blocked.reply.code, 554);
  const allowed = await engine.checkID({ ip: '192.0.2.7' });
  assert.equal(allowed.action, 'ACCEPT');
});

test('DNSBL listing over the threshold rejects at connect; the Spamhaus error code does not', async () => {
  const resolver = new MemoryResolver({
    ...zone,
    '5.113.0.203.zen.example': [{ A: '127.0.0.2' }],
    '6.113.0.203.zen.example': [{ A: '127.255.255.254' }],
  });
  const config = defaultConfig();
  config.prescreen.dnsbl = [{ zone: 'zen.example', weight: 1, type: 'ip' }];
  const engine = new Engine({ resolver, policy: staticPolicy(config, resolver) });
  const listed = await engine.checkID({ ip: '203.0.113.5' });
  assert.equal(listed.action, 'REJECT');
  assert.match(listed.reply.text, /blocked using zen\.example/);
  const error = await engine.checkID({ ip: '203.0.113.6' });
  assert.equal(error.action, 'CONTINUE');
  assert.deepEqual(error.session.facts.dnsbl?.errors, ['zen.example']);
});

test('forged Authentication-Results with our authserv-id are marked for removal', async () => {
  const { engine } = engineWith(null, (c) => {
    c.authservId = 'mx.receiver.example';
  });
  const r = await engine.checkID({
    ip: '192.0.2.1',
    helo: 'mx.example.com',
    mailFrom: 'a@example.com',
    rcpt: ['b@example.org'],
    headers: [
      ['Authentication-Results', 'other.example; spf=pass smtp.mailfrom=a@example.com'],
      ['Authentication-Results', 'MX.Receiver.Example; dkim=pass header.d=example.com'],
    ],
    body: '',
  });
  assert.deepEqual(r.verdict.removeHeaders.map((h) => h.occurrence), [2]);
});
