import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine, staticPolicy } from '../../src/engine/engine.ts';
import { emptyFacts, type Facts } from '../../src/engine/facts.ts';
import type { Verdict } from '../../src/engine/verdict.ts';
import { defaultConfig, loadConfigFile } from '../../src/policy/config.ts';
import { bare, factsSummary, mailLogLine, quoted } from '../../src/telemetry/maillog.ts';
import { Telemetry } from '../../src/telemetry/telemetry.ts';
import { FIXTURES, seedZone } from '../support/fixtures.ts';
import { MemoryResolver } from '../support/zone.ts';

function engines() {
  const lines: string[] = [];
  const telemetry = new Telemetry({ mailLog: (l) => lines.push(l) });
  const resolver = new MemoryResolver(seedZone());
  const seed = loadConfigFile(`${FIXTURES}seed-authent.yaml`);
  const defaults = defaultConfig();
  defaults.authservId = 'mx.receiver.example';
  return {
    lines,
    seed: new Engine({ resolver, policy: staticPolicy(seed, resolver), observer: telemetry.observer }),
    defaults: new Engine({ resolver, policy: staticPolicy(defaults, resolver), observer: telemetry.observer }),
  };
}

test('one line per final verdict, in its exact form: the seed REJECT and ACCEPT at the ID stage', async () => {
  const { lines, seed } = engines();
  await seed.checkID({ ip: '192.0.2.1', id: 'example.net' });
  await seed.checkID({ ip: '192.0.2.1', id: 'example.com' });
  assert.deepEqual(lines, [
    `checkid: client=[192.0.2.1] helo=- id=example.net from=- to=- stage=id action=REJECT reply="550 5.7.1 Sending MTA '192.0.2.1' not authorized by 'example.net'" reason=identity-spf-fail facts="iprev=pass id=fail ratings=none"`,
    'checkid: client=[192.0.2.1] helo=- id=example.com from=- to=- stage=id action=ACCEPT reply="250 Sender OK" reason=reputable facts="iprev=pass id=pass ratings=8.33"',
  ]);
});

test('a message decided at end of message lists its sender, every recipient and the message checks', async () => {
  const { lines, defaults } = engines();
  await defaults.checkID({
    ip: '192.0.2.1',
    helo: 'mx.example.com',
    mailFrom: 'a@example.com',
    rcpt: ['b@example.org', 'c@example.org'],
    headers: 'From: a@example.com\r\nSubject: hi\r\n',
    body: 'hello\r\n',
  });
  assert.deepEqual(lines, [
    'checkid: client=[192.0.2.1] helo=mx.example.com id=- from=<a@example.com> to=<b@example.org>,<c@example.org> stage=eom action=FILTER reply="250 Sender OK" reason=unknown-sender facts="iprev=pass helo=pass spf-helo=pass id=pass spf=pass dkim=none arc=none dmarc=none"',
  ]);
});

test('a MAIL-stage reject, and no line for a session that never reached a final verdict', async () => {
  const { lines, defaults } = engines();
  // ends at RCPT with CONTINUE (no message given): nothing final, nothing logged
  await defaults.checkID({ ip: '192.0.2.9', helo: 'x', mailFrom: 'a@softfail.example', rcpt: ['b@example.org'] });
  assert.deepEqual(lines, []);
  await defaults.checkID({ ip: '198.51.100.7', helo: 'mx.example.com', mailFrom: 'a@example.com', rcpt: ['b@example.org'] });
  assert.deepEqual(lines, [
    `checkid: client=[198.51.100.7] helo=mx.example.com id=- from=<a@example.com> to=- stage=mail action=REJECT reply="550 5.7.1 Sending MTA '198.51.100.7' not authorized by 'mx.example.com'" reason=identity-spf-fail facts="iprev=permerror helo=fail spf-helo=fail id=fail spf=fail"`,
  ]);
});

const verdict = (over: Partial<Verdict> = {}): Verdict => ({
  action: 'TEMPFAIL',
  reply: { code: 451, xcode: '4.4.3', text: 'Timeout checking client; try again later' },
  headers: [],
  removeHeaders: [],
  stage: 'rcpt',
  reason: 'timeout',
  explanation: [],
  ...over,
});

test('the null sender is from=<>, a RCPT verdict names its recipient, IPv6 clients are bracketed', () => {
  const f = emptyFacts('2001:db8::1');
  f.envelope.helo = 'mx.example';
  f.envelope.mailFrom = '';
  f.envelope.rcpt = ['x@example.org', 'y@example.org'];
  assert.equal(
    mailLogLine(f, verdict(), 'y@example.org'),
    'checkid: client=[2001:db8::1] helo=mx.example id=- from=<> to=<y@example.org> stage=rcpt action=TEMPFAIL reply="451 4.4.3 Timeout checking client; try again later" reason=timeout facts=""',
  );
});

test('escaping keeps one line with space-separated fields: bare values use \\xHH, quoted ones backslashes', () => {
  assert.equal(bare('a b\t"c"\\'), 'a\\x20b\\x09\\x22c\\x22\\x5c');
  assert.equal(bare('\u00e9l\u00e8ve@exemple.fr'), '\u00e9l\u00e8ve@exemple.fr');
  assert.equal(quoted('say "no"\\ \x01'), '"say \\"no\\"\\\\ \\x01"');
  const f = emptyFacts('192.0.2.1');
  f.envelope.helo = 'two words';
  f.envelope.mailFrom = '"odd local"@example.com';
  const line = mailLogLine(f, verdict({ stage: 'mail', action: 'REJECT', reply: { code: 550, xcode: '', text: 'No "thanks"' }, reason: 'hook' }));
  assert.equal(line, 'checkid: client=[192.0.2.1] helo=two\\x20words id=- from=<\\x22odd\\x20local\\x22@example.com> to=- stage=mail action=REJECT reply="550 No \\"thanks\\"" reason=hook facts=""');
  assert.ok(!/[\r\n]/.test(line));
});

test('facts summary: local lists, DNS lists with their zones, DMARC disposition, forged A-R, internal errors', () => {
  const f: Facts = emptyFacts('192.0.2.1');
  f.localList = { ip: 'block', ipEntry: '192.0.2.0/24', domains: [{ list: 'allow', entry: 'example.com', identity: 'mailfrom', domain: 'example.com' }] };
  f.dnsbl = { score: 2, listed: ['zen.example', 'bl.example'], allowListed: [], errors: [], disabled: [], results: [] };
  f.dmarc = { result: 'fail', disposition: 'reject' } as Facts['dmarc'];
  f.forgedAuthResults = [{ name: 'Authentication-Results', occurrence: 1, reason: 'ours' }];
  f.internalErrors = ['boom'];
  assert.equal(factsSummary(f), 'local=block local-domain=allow dnsbl=2(zen.example,bl.example) dmarc=fail(reject) forged-ar=1 errors=1');
});
