/** End of message through the engine: DKIM while the body streams, then DMARC, then the policy. */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { before, test } from 'node:test';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { Engine, splitMessage, staticPolicy } from '../../src/engine/engine.ts';
import { type Config, defaultConfig } from '../../src/policy/config.ts';
import { seedZone } from '../support/fixtures.ts';
import { MemoryResolver } from '../support/zone.ts';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
let signed = '';
const unsigned = 'From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: hello\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nHello Bob,\r\nsee you.\r\n';

before(async () => {
  // signed by an independent implementation (mailauth, the test oracle), not by our own code
  const r = (await dkimSign(Buffer.from(unsigned), {
    signatureData: [{ signingDomain: 'example.com', selector: 'sel', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }],
  } as never)) as { signatures: string };
  signed = r.signatures + unsigned;
});

function setup(mutate?: (c: Config) => void) {
  const resolver = new MemoryResolver({
    ...seedZone(),
    'sel._domainkey.example.com': [{ TXT: `v=DKIM1; k=rsa; p=${p}` }],
    '_dmarc.example.com': [{ TXT: 'v=DMARC1; p=reject' }],
    'forwarder.example': [{ TXT: 'v=spf1 ip4:203.0.113.0/24 -all' }],
  });
  const config = defaultConfig();
  config.authservId = 'mx.receiver.example';
  mutate?.(config);
  return new Engine({ resolver, policy: staticPolicy(config, resolver) });
}

function run(engine: Engine, raw: string, ip: string, mailFrom: string) {
  const { headers, body } = splitMessage(raw);
  return engine.checkID({ ip, helo: 'mx.forwarder.example', mailFrom, rcpt: ['bob@example.org'], headers, body });
}

test('signed and SPF-aligned: dkim=pass and dmarc=pass in Authentication-Results', async () => {
  const r = await run(setup(), signed, '192.0.2.1', 'alice@example.com');
  assert.equal(r.action, 'FILTER');
  const ar = r.headers[0]!.text.replace(/\r\n\t/g, ' ');
  assert.match(ar, /dkim=pass header\.d=example\.com header\.i=@example\.com header\.s=sel header\.b=\S{8,}/);
  assert.match(ar, /dmarc=pass \(p=reject dis=none\) header\.from=example\.com/);
  assert.equal(r.session.facts.dkim?.[0]?.result, 'pass');
});

test('forwarded with a DKIM signature intact: DMARC passes by DKIM alone', async () => {
  const r = await run(setup(), signed, '203.0.113.5', 'list@forwarder.example');
  assert.equal(r.session.facts.spfMailFrom?.result, 'pass');
  assert.equal(r.session.facts.dmarc?.result, 'pass');
  assert.equal(r.action, 'FILTER');
});

test('a forgery under p=reject (no aligned SPF or DKIM) is rejected with 550 5.7.1', async () => {
  const r = await run(setup(), unsigned, '203.0.113.5', 'list@forwarder.example');
  assert.equal(r.session.facts.dmarc?.result, 'fail');
  assert.equal(r.action, 'REJECT');
  assert.deepEqual(r.reply, { code: 550, xcode: '5.7.1', text: "Unauthenticated email from example.com is not accepted due to the domain's DMARC policy" });
});

test('a modified body fails DKIM; the operator can exempt a domain from p=reject', async () => {
  const tampered = signed.replace('see you.', 'send money.');
  const r = await run(setup((c) => void c.dmarc.exempt.push('example.com')), tampered, '203.0.113.5', 'list@forwarder.example');
  assert.equal(r.session.facts.dkim?.[0]?.result, 'fail');
  assert.equal(r.action, 'FILTER');
  assert.match(r.headers[0]!.text.replace(/\r\n\t/g, ' '), /dkim=fail reason="[^"]*body/);
});

test('DKIM off in the config: no DKIM results, DMARC judges on SPF alone', async () => {
  const r = await run(setup((c) => {
    c.dkim.enabled = false;
  }), signed, '192.0.2.1', 'alice@example.com');
  assert.equal(r.session.facts.dkim, undefined);
  assert.equal(r.session.facts.dmarc?.result, 'pass');
});

test('ARC: a passing chain sealed by a trusted forwarder overrides a DMARC p=reject failure', async () => {
  const { rsaKey } = await import('../checks/dkim/sign.ts');
  const { addArcSet } = await import('../checks/arc/seal.ts');
  const key = rsaKey();
  const sealed = addArcSet(unsigned, {
    key,
    domain: 'forwarder.example',
    selector: 'arc',
    authResults: 'mx.forwarder.example; dkim=pass header.d=example.com; dmarc=pass header.from=example.com',
  });
  const zone = { 'arc._domainkey.forwarder.example': [{ TXT: key.record }] };
  const trusting = (c: Config) => {
    c.arc.trustedSealers = ['forwarder.example'];
  };
  const withArc = (mutate?: (c: Config) => void) => {
    const resolver = new MemoryResolver({
      ...seedZone(),
      ...zone,
      '_dmarc.example.com': [{ TXT: 'v=DMARC1; p=reject' }],
      'forwarder.example': [{ TXT: 'v=spf1 ip4:203.0.113.0/24 -all' }],
    });
    const config = defaultConfig();
    config.authservId = 'mx.receiver.example';
    mutate?.(config);
    return new Engine({ resolver, policy: staticPolicy(config, resolver) });
  };
  const untrusted = await run(withArc(), sealed, '203.0.113.5', 'list@forwarder.example');
  assert.equal(untrusted.session.facts.arc?.cv, 'pass');
  assert.equal(untrusted.action, 'REJECT');
  const trusted = await run(withArc(trusting), sealed, '203.0.113.5', 'list@forwarder.example');
  assert.equal(trusted.action, 'FILTER');
  assert.match(trusted.verdict.explanation.join(' '), /sealed by trusted forwarder\.example/);
  assert.match(trusted.headers[0]!.text.replace(/\r\n\t/g, ' '), /arc=pass \(i=1\)/);
});

test('splitMessage: a line without a field name, or a continuation before any field, is not a field', () => {
  assert.deepEqual(splitMessage(' : leading continuation\r\nA: 1\r\n\tfolded\r\nno colon here\r\n: empty name\r\nB:2\r\n\r\nbody').headers, [
    ['A', '1\r\n\tfolded'],
    ['B', '2'],
  ]);
});
