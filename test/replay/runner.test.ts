/** The runner: each stored message through the engine, in order, whatever the concurrency. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DnsResult, QueryOptions, RecordType, Resolver } from '../../src/dns/types.ts';
import { Engine, splitMessage, staticPolicy } from '../../src/engine/engine.ts';
import { type Config, loadConfigFile } from '../../src/policy/config.ts';
import { type ReplayEntry, replayMessage, runReplay } from '../../src/replay/runner.ts';
import type { SourceItem } from '../../src/replay/sources.ts';
import { factsSummary } from '../../src/telemetry/maillog.ts';
import { FIXTURES, seedZone, tempDir } from '../support/fixtures.ts';
import { MemoryResolver } from '../support/zone.ts';

/** The seed zone, with answers about example.net held back so later messages finish first. */
class SlowResolver implements Resolver {
  private readonly inner = new MemoryResolver(seedZone());
  async query<T extends RecordType>(name: string, type: T, options?: QueryOptions): Promise<DnsResult<T>> {
    if (name.toLowerCase().includes('example.net')) await new Promise((r) => setTimeout(r, 30));
    return this.inner.query(name, type, options);
  }
}

function engine(mutate?: (c: Config) => void) {
  const resolver = new SlowResolver();
  const config = loadConfigFile(`${FIXTURES}seed-authent.yaml`);
  config.headers = ['authentication-results', 'authent'];
  mutate?.(config);
  return new Engine({ resolver, policy: staticPolicy(config, resolver) });
}

const received = (ip: string, helo: string) => `Received: from ${helo} (${helo} [${ip}])\n\tby mx.receiver.example (Postfix) with ESMTP id 4VtQ9k0Xyzz2xQ\n\tfor <bob@example.org>; Mon,  3 Jun 2024 10:00:00 +0200 (CEST)\n`;

function message(n: number, from: string): string {
  return `Return-Path: <${from}>\nX-Original-To: bob@example.org\n${received('192.0.2.1', 'mx.example.com')}Message-ID: <m${n}@example.com>\nFrom: ${from}\nSubject: ${n}\n\nbody ${n}\n`;
}

function item(seq: number, text: string, extra: Partial<SourceItem> = {}): SourceItem {
  return { seq, file: `/mail/${seq}.eml`, kind: 'file', raw: Buffer.from(text, 'latin1'), ...extra };
}

test('entries come back in input order with jobs 4 even when earlier messages are slower', async () => {
  const e = engine();
  const items = Array.from({ length: 24 }, (_, i) => item(i + 1, message(i + 1, i % 3 === 0 ? 'x@example.net' : 'a@example.com')));
  async function* source() {
    yield* items;
  }
  const seen: ReplayEntry[] = [];
  await runReplay(e, source(), { jobs: 4 }, (entry) => seen.push(entry));
  assert.deepEqual(seen.map((s) => s.n), items.map((i) => i.seq));
  // the slow ones are the example.net senders: SPF fail at MAIL
  for (const s of seen) {
    assert.equal(s.status, 'checked');
    const expected = s.n % 3 === 1 ? 'REJECT' : 'FILTER';
    assert.equal(s.verdict!.action, expected, `message ${s.n}`);
  }
});

test('a verdict equals engine.checkID on the recovered envelope and the message from the border hop on', async () => {
  const e = engine();
  const text = message(1, 'a@example.com');
  const entry = await replayMessage(e, item(1, text));
  assert.equal(entry.status, 'checked');
  const { headers, body } = splitMessage(text);
  const direct = await e.checkID({ ip: '192.0.2.1', helo: 'mx.example.com', mailFrom: 'a@example.com', rcpt: ['bob@example.org'], headers: headers.slice(2), body, encoding: 'latin1' });
  assert.equal(entry.verdict!.action, direct.action);
  assert.equal(entry.verdict!.reason, direct.verdict.reason);
  assert.deepEqual(entry.verdict!.reply, direct.reply);
  assert.equal(entry.verdict!.facts, factsSummary(direct.session.facts));
  assert.equal(entry.messageId, 'm1@example.com');
  assert.deepEqual(entry.envelope?.rcpt, ['bob@example.org']);
});

test('our own Authentication-Results above the border hop is not the sender\'s; one below it is a forgery', async () => {
  const e = engine();
  const ours = 'Authentication-Results: mx.receiver.example; spf=pass smtp.mailfrom=a@example.com\n';
  const ownAbove = await replayMessage(e, item(1, ours + message(1, 'a@example.com')));
  assert.doesNotMatch(ownAbove.verdict!.facts, /forged-ar/);
  const forged = message(2, 'a@example.com').replace('Message-ID:', `${ours}Message-ID:`);
  const below = await replayMessage(e, item(2, forged));
  assert.match(below.verdict!.facts, /forged-ar=1/);
});

test('an envelope file wins over the JSON Lines file, which wins over the headers', async () => {
  const e = engine();
  const dir = tempDir('checkid-runner-');
  const sidecar = join(dir, 'm.eml.envelope.json');
  writeFileSync(sidecar, JSON.stringify({ ip: '192.0.2.1', id: 'example.com' }));
  const envelopes = new Map([['m1@example.com', { ip: '192.0.2.1', id: 'example.net', rcpt: [] as string[] }]]);
  const withFile = await replayMessage(e, item(1, message(1, 'a@example.com'), { envelopeFile: sidecar }), { envelopes });
  assert.equal(withFile.envelope?.source, 'envelope-file');
  // the seed: example.com with its ratings is reputable
  assert.equal(withFile.verdict!.action, 'ACCEPT');
  assert.equal(withFile.verdict!.reason, 'reputable');
  const fromLines = await replayMessage(e, item(1, message(1, 'a@example.com')), { envelopes });
  assert.equal(fromLines.envelope?.source, 'envelope-jsonl');
  assert.equal(fromLines.verdict!.action, 'REJECT');
  assert.equal(fromLines.verdict!.reason, 'identity-spf-fail');
  const fromHeaders = await replayMessage(e, item(1, message(1, 'a@example.com')));
  assert.equal(fromHeaders.envelope?.source, 'headers');
});

test('broken message, broken envelope file, unusable envelope, no hop: each its own status, never a throw', async () => {
  const e = engine();
  const dir = tempDir('checkid-runner-');
  const badFile = join(dir, 'bad.envelope.json');
  writeFileSync(badFile, '{"ip":"192.0.2.1","hello":"x"}');
  const noId = join(dir, 'noid.envelope.json');
  writeFileSync(noId, '{"ip":"192.0.2.1","id":"not a domain"}');
  const cases: Array<[SourceItem, string, RegExp]> = [
    [item(1, 'garbage line\n\nbody'), 'error', /^not a message: header line 1 is not a "Name: value" field/],
    [item(2, message(2, 'a@example.com'), { envelopeFile: badFile }), 'error', /^envelope file: .*unknown key "hello" \(did you mean "helo"\?\)/],
    [item(3, message(3, 'a@example.com'), { envelopeFile: noId }), 'error', /^envelope not usable: ID "not a domain" is not a fully qualified domain name/],
    [item(4, 'Subject: local\n\nb\n'), 'skipped', /^no Received header$/],
    [{ seq: 5, file: '/mail/5.eml', kind: 'file', error: 'cannot read: EACCES' }, 'error', /^cannot read: EACCES$/],
  ];
  for (const [it, status, problem] of cases) {
    const entry = await replayMessage(e, it);
    assert.equal(entry.status, status, JSON.stringify(entry));
    assert.match(entry.problem!, problem);
    assert.equal(entry.verdict, undefined);
  }
});
