/** The policy adapter's decisions, request by request, as Postfix would ask (no sockets). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPolicyHandler, headerLine, policyAction, requestToAsk } from '../../../src/adapters/policyd/server.ts';
import { restage } from '../../../src/adapters/policyd/staged.ts';
import type { Verdict } from '../../../src/engine/verdict.ts';
import { adapterEngine, postfixRequest } from './helpers.ts';

function handler(options: Parameters<typeof adapterEngine>[0] = {}) {
  return createPolicyHandler({ engine: adapterEngine(options) });
}

test('a whole message, every stage asked: DUNNO until DATA, then one PREPEND per DATA request (top field first), then DUNNO; END-OF-MESSAGE forgets the connection', async () => {
  const h = handler();
  const ask = (state: string, extra: Record<string, string> = {}) =>
    h.handle(postfixRequest({ protocol_state: state, helo_name: state === 'CONNECT' ? '' : 'client.adapter.example', ...extra }));
  assert.equal(await ask('CONNECT'), 'DUNNO');
  assert.equal(await ask('EHLO'), 'DUNNO');
  assert.equal(await ask('MAIL', { sender: 'a@pass.adapter.example' }), 'DUNNO');
  assert.equal(await ask('RCPT', { sender: 'a@pass.adapter.example', recipient: 'b@dest.example' }), 'DUNNO');
  const data = { sender: 'a@pass.adapter.example', recipient: 'b@dest.example', recipient_count: '1' };
  const first = await ask('DATA', data);
  const second = await ask('DATA', data);
  // Postfix puts the first PREPEND on top: Authent: first, Authentication-Results: right above the message
  assert.match(first, /^PREPEND Authent: 127\.0\.0\.1 client\.adapter\.example SPF1 PASS$/);
  assert.match(second, /^PREPEND Authentication-Results: mx\.receiver\.example; iprev=pass \(client\.adapter\.example\) policy\.iprev=127\.0\.0\.1; spf=pass /);
  assert.doesNotMatch(second, /[\r\n]/);
  // FILTER (not reputable): nothing more to add, no opinion
  assert.equal(await ask('DATA', data), 'DUNNO');
  assert.equal(h.sessions.size, 1);
  assert.equal(await ask('END-OF-MESSAGE', { ...data, queue_id: '4ABC123', size: '321' }), 'DUNNO');
  assert.equal(h.sessions.size, 0);
});

test('asked only at RCPT (smtpd_delay_reject): the client, HELO and MAIL stages are caught up, and an SPF fail is our 550 5.7.23', async () => {
  const h = handler();
  const action = await h.handle(postfixRequest({ helo_name: 'client.adapter.example', sender: 'a@fail.adapter.example', recipient: 'b@dest.example' }));
  assert.equal(action, "550 5.7.23 SPF: 'fail.adapter.example' does not designate '127.0.0.1' as permitted sender");
});

test('a client on the local block list is refused at RCPT with 550 (554 belongs to the connection greeting)', async () => {
  const h = handler();
  const connect = await h.handle(postfixRequest({ protocol_state: 'CONNECT', client_address: '192.0.2.99' }));
  assert.equal(connect, '554 5.7.1 Client host [192.0.2.99] blocked by local policy');
  const rcpt = await h.handle(postfixRequest({ client_address: '192.0.2.99', helo_name: 'x.example', sender: 'a@example.com', recipient: 'b@dest.example' }));
  assert.equal(rcpt, '550 5.7.1 Client host [192.0.2.99] blocked by local policy');
});

test('DNS trouble: DEFER_IF_PERMIT before DATA (a definite reject elsewhere still wins), 451 at DATA', async () => {
  const h = handler();
  const rcpt = await h.handle(postfixRequest({ helo_name: 'client.adapter.example', sender: 'a@temp.adapter.example', recipient: 'b@dest.example' }));
  assert.match(rcpt, /^DEFER_IF_PERMIT 4\.4\.3 Temporary DNS failure checking SPF of 'temp\.adapter\.example'; try again later$/);
  const data = await h.handle(postfixRequest({ protocol_state: 'DATA', helo_name: 'client.adapter.example', sender: 'a@temp.adapter.example', recipient: 'b@dest.example' }));
  assert.match(data, /^451 4\.4\.3 Temporary DNS failure/);
});

test('a reputable sender: OK at RCPT, its header fields at DATA, OK once they are handed out and at END-OF-MESSAGE', async () => {
  const h = handler();
  const base = { helo_name: 'good.adapter.example', sender: 'a@pass.adapter.example', recipient: 'b@dest.example' };
  assert.equal(await h.handle(postfixRequest(base)), 'OK');
  assert.match(await h.handle(postfixRequest({ ...base, protocol_state: 'DATA' })), /^PREPEND Authent: 127\.0\.0\.1 good\.adapter\.example SPF1 PASS ratings=S1:A,M2:A,H1:B$/);
  assert.match(await h.handle(postfixRequest({ ...base, protocol_state: 'DATA' })), /^PREPEND Authentication-Results: /);
  assert.equal(await h.handle(postfixRequest({ ...base, protocol_state: 'DATA' })), 'OK');
  assert.equal(await h.handle(postfixRequest({ ...base, protocol_state: 'END-OF-MESSAGE' })), 'OK');
});

test('a new instance on the same connection is a new message: its own sender is checked, its own headers handed out', async () => {
  const h = handler();
  const conn = { helo_name: 'client.adapter.example', client_port: '41000' };
  assert.equal(await h.handle(postfixRequest({ ...conn, instance: 'm1', sender: 'a@pass.adapter.example', recipient: 'b@dest.example' })), 'DUNNO');
  assert.match(await h.handle(postfixRequest({ ...conn, protocol_state: 'DATA', instance: 'm1', sender: 'a@pass.adapter.example' })), /^PREPEND Authent:/);
  assert.match(
    await h.handle(postfixRequest({ ...conn, instance: 'm2', sender: 'a@fail.adapter.example', recipient: 'c@dest.example' })),
    /^550 5\.7\.23 SPF: 'fail\.adapter\.example'/,
  );
  assert.equal(await h.handle(postfixRequest({ ...conn, instance: 'm3', sender: 'z@pass.adapter.example', recipient: 'c@dest.example' })), 'DUNNO');
  assert.match(await h.handle(postfixRequest({ ...conn, protocol_state: 'DATA', instance: 'm3', sender: 'z@pass.adapter.example' })), /^PREPEND Authent:/);
  // another client port is another connection
  assert.equal(h.sessions.size, 1);
  await h.handle(postfixRequest({ helo_name: 'client.adapter.example', client_port: '41001', sender: 'a@pass.adapter.example', recipient: 'b@dest.example' }));
  assert.equal(h.sessions.size, 2);
});

test('the null sender is checked as MAIL FROM:<> (SPF of the HELO name)', async () => {
  const h = handler();
  assert.equal(await h.handle(postfixRequest({ helo_name: 'client.adapter.example', sender: '', recipient: 'postmaster@dest.example' })), 'DUNNO');
});

test('requests the engine needs not see, or cannot check, get DUNNO', async () => {
  const h = handler();
  assert.equal(await h.handle(postfixRequest({ protocol_state: 'VRFY' })), 'DUNNO');
  assert.equal(await h.handle(postfixRequest({ protocol_state: 'ETRN', etrn_domain: 'example.com' })), 'DUNNO');
  assert.equal(await h.handle(new Map([['request', 'something_else']])), 'DUNNO');
  assert.equal(await h.handle(new Map()), 'DUNNO');
  assert.equal(await h.handle(postfixRequest({ client_address: 'unknown' })), 'DUNNO');
  assert.equal(h.sessions.size, 0);
});

test('requestToAsk: keys one SMTP connection by both endpoints, Postfix < 3.0 by instance; the sender only from MAIL on', () => {
  const rcpt = requestToAsk(postfixRequest({ sender: 'a@example.com', recipient: 'b@example.org', helo_name: 'h.example' }))!;
  assert.equal(rcpt.key, '127.0.0.1:40000>127.0.0.1:25|');
  assert.deepEqual(rcpt.ask, { stage: 'rcpt', helo: 'h.example', transaction: '1a2b.5f3c1d2e.1', sender: 'a@example.com', recipient: 'b@example.org' });
  const old = requestToAsk(new Map([['request', 'smtpd_access_policy'], ['protocol_state', 'HELO'], ['client_address', '192.0.2.1'], ['instance', 'abc'], ['sender', 'ignored@x']]))!;
  assert.equal(old.key, '192.0.2.1|abc|');
  assert.equal(old.ask.sender, undefined);
  const eom = requestToAsk(postfixRequest({ protocol_state: 'END-OF-MESSAGE' }))!;
  assert.deepEqual([eom.ask.stage, eom.ask.takeHeaders, eom.ask.endOfMessage], ['data', 0, true]);
  assert.equal(requestToAsk(postfixRequest({ protocol_state: 'VRFY' })), null);
});

const verdict = (action: Verdict['action'], code = 250, xcode = '', text = 'OK'): Verdict => ({
  action,
  reply: { code, xcode, text },
  headers: [],
  removeHeaders: [],
  stage: 'rcpt',
  reason: 'test',
  explanation: [],
});

test('policyAction: every action in access(5) words', () => {
  const h = { label: 'X-Test:', text: 'a\r\n\tb' };
  assert.equal(policyAction(verdict('CONTINUE'), 'rcpt'), 'DUNNO');
  assert.equal(policyAction(verdict('ACCEPT'), 'rcpt'), 'OK');
  assert.equal(policyAction(verdict('FILTER'), 'data'), 'DUNNO');
  assert.equal(policyAction(verdict('FILTER'), 'data', h), 'PREPEND X-Test: a b');
  assert.equal(policyAction(verdict('ACCEPT'), 'data', h), 'PREPEND X-Test: a b');
  assert.equal(policyAction(verdict('REJECT', 550, '5.7.1', 'no'), 'rcpt'), '550 5.7.1 no');
  assert.equal(policyAction(verdict('REJECT', 550, '', 'no'), 'mail'), '550 no');
  assert.equal(policyAction(verdict('TEMPFAIL', 451, '4.4.3', 'later'), 'rcpt'), 'DEFER_IF_PERMIT 4.4.3 later');
  assert.equal(policyAction(verdict('TEMPFAIL', 451, '4.4.3', 'later'), 'data'), '451 4.4.3 later');
  assert.equal(policyAction(verdict('DISCARD', 250, '', 'discarded'), 'rcpt'), 'DISCARD discarded');
  assert.equal(headerLine({ label: 'A:', text: 'x\r\n\ty\nz\u0001' }), 'A: x y z ');
});

test('restage: a REJECT carried to a later command takes that command\'s code', () => {
  assert.equal(restage(verdict('REJECT', 554, '5.7.1', 'x'), 'connect').reply.code, 554);
  assert.deepEqual(restage(verdict('REJECT', 554, '5.7.1', 'x'), 'rcpt').reply, { code: 550, xcode: '5.7.1', text: 'x' });
  assert.deepEqual(restage(verdict('REJECT', 501, '5.5.2', 'bad HELO'), 'helo').reply, { code: 501, xcode: '5.5.2', text: 'bad HELO' });
  assert.deepEqual(restage(verdict('REJECT', 501, '5.5.2', 'bad HELO'), 'mail').reply, { code: 550, xcode: '5.7.1', text: 'bad HELO' });
  assert.equal(restage(verdict('TEMPFAIL', 451, '4.4.3', 'x'), 'rcpt').reply.code, 451);
});
