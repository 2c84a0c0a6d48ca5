/** The readsocket protocol and server, asked the way Exim's ${readsocket} asks (no Exim here). */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { eximSnippet, eximSnippetText, eximSocket } from '../../../src/adapters/exim/config.ts';
import { decodeReadsocketResponse, encodeReadsocketResponse, eximQuote, parseReadsocketRequest, ReadsocketProtocolError } from '../../../src/adapters/exim/protocol.ts';
import { createReadsocketHandler, createReadsocketServer } from '../../../src/adapters/exim/server.ts';
import { adapterEngine } from '../policyd/helpers.ts';

test('request: name=value lines to an empty line; brackets and spaces trimmed; headers are base64; unknown names ignored', () => {
  const headers = 'Subject: hi\nAuthentication-Results: x; spf=pass\n';
  const req = parseReadsocketRequest(
    `stage=DATA\nsession=123/192.0.2.1/4000\nip=192.0.2.1\nhelo=mx.example.com\nsender=<a@example.com>\nrecipients=b@example.org, <c@example.org>\nqueue_id=1abc\nheaders=${Buffer.from(headers).toString('base64')}\nfuture=1\n\nignored=after the end\n`,
  );
  assert.deepEqual(req, {
    stage: 'data',
    session: '123/192.0.2.1/4000',
    ip: '192.0.2.1',
    helo: 'mx.example.com',
    sender: 'a@example.com',
    recipients: ['b@example.org', 'c@example.org'],
    queueId: '1abc',
    headers,
  });
  // what Exim sends at connect: empty fields are "not known yet"
  assert.deepEqual(parseReadsocketRequest('stage=connect\nsession=1/::1/5\nip=::1\nhelo=\nsender=\n\n'), { stage: 'connect', session: '1/::1/5', ip: '::1', sender: '' });
  assert.throws(() => parseReadsocketRequest('stage=vrfy\nip=1.2.3.4\n'), ReadsocketProtocolError);
  assert.throws(() => parseReadsocketRequest('ip=1.2.3.4\n'), /stage must be one of/);
  assert.throws(() => parseReadsocketRequest('stage=rcpt\njunk line\n'), /without name=value/);
  assert.throws(() => parseReadsocketRequest('stage=data\nip=1.2.3.4\nheaders=not base64!\n'), /base64/);
});

test('response: one line of quoted pairs that Exim\'s extract operator reads back exactly', () => {
  const value = 'a "quoted" \\ back\r\nslash\tand tab';
  assert.equal(eximQuote(value), '"a \\"quoted\\" \\\\ back\\nslash\\tand tab"');
  const line = encodeReadsocketResponse([
    ['action', 'REJECT'],
    ['message', '550 5.7.1 no'],
    ['add_header', ':at_start:A: 1\n:at_start:B: 2\n\tfolded'],
    ['empty', ''],
  ]);
  assert.equal(line.split('\n').length, 2);
  assert.ok(line.endsWith('\n'));
  const back = decodeReadsocketResponse(line);
  assert.equal(back.get('action'), 'REJECT');
  assert.equal(back.get('message'), '550 5.7.1 no');
  assert.equal(back.get('add_header'), ':at_start:A: 1\n:at_start:B: 2\n\tfolded');
  assert.equal(back.get('empty'), '');
  assert.equal(decodeReadsocketResponse(encodeReadsocketResponse([['x', value]])).get('x'), 'a "quoted" \\ back\nslash\tand tab');
});

test('handler: one connection asked stage by stage; headers and removals only at DATA, for ours and a forged A-R', async () => {
  const h = createReadsocketHandler({ engine: adapterEngine() });
  const base = { session: 's1', ip: '127.0.0.1', helo: 'client.adapter.example' };
  const ask = async (fields: Record<string, string>) => new Map(await h.handle(parseReadsocketRequest(Object.entries(fields).map(([k, v]) => `${k}=${v}\n`).join(''))));
  assert.equal((await ask({ stage: 'connect', session: 's1', ip: '127.0.0.1' })).get('action'), 'CONTINUE');
  assert.equal((await ask({ stage: 'helo', ...base })).get('action'), 'CONTINUE');
  const mail = await ask({ stage: 'mail', ...base, sender: 'a@pass.adapter.example' });
  assert.equal(mail.get('action'), 'CONTINUE');
  assert.equal(mail.get('add_header'), '');
  const rcpt = await ask({ stage: 'rcpt', ...base, sender: 'a@pass.adapter.example', recipient: 'b@dest.example' });
  assert.equal(rcpt.get('action'), 'CONTINUE');
  const headers = Buffer.from('Authentication-Results: mx.receiver.example; spf=pass\nSubject: x\n').toString('base64');
  const data = await ask({ stage: 'data', ...base, sender: 'a@pass.adapter.example', recipients: 'b@dest.example', headers });
  assert.equal(data.get('action'), 'FILTER');
  assert.equal(data.get('reason'), 'unknown-sender');
  const lines = data.get('add_header')!.split(/\n(?![ \t])/);
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^:at_start:Authentication-Results: mx\.receiver\.example; iprev=pass/);
  assert.equal(lines[1], ':at_start:Authent: 127.0.0.1 client.adapter.example SPF1 PASS');
  assert.equal(data.get('remove_header'), 'Authentication-Results');
  assert.equal(h.sessions.size, 1);
  assert.equal((await ask({ stage: 'quit', session: 's1', ip: '127.0.0.1' })).get('reason'), 'quit');
  assert.equal(h.sessions.size, 0);
});

test('handler: rejects and defers carry the reply; no session name → answered on its own; no IP → CONTINUE', async () => {
  const h = createReadsocketHandler({ engine: adapterEngine() });
  const reject = new Map(await h.handle({ stage: 'rcpt', ip: '127.0.0.1', helo: 'client.adapter.example', sender: 'x@fail.adapter.example', recipient: 'b@dest.example' }));
  assert.equal(reject.get('action'), 'REJECT');
  assert.equal(reject.get('message'), "550 5.7.23 SPF: 'fail.adapter.example' does not designate '127.0.0.1' as permitted sender");
  const defer = new Map(await h.handle({ stage: 'mail', ip: '127.0.0.1', helo: 'client.adapter.example', sender: 'x@temp.adapter.example' }));
  assert.equal(defer.get('action'), 'DEFER');
  assert.match(defer.get('message')!, /^451 4\.4\.3 Temporary DNS failure/);
  assert.equal(h.sessions.size, 0);
  assert.equal(new Map(await h.handle({ stage: 'rcpt', ip: '', sender: 'a@b', recipient: 'c@d' })).get('reason'), 'no-client-ip');
  assert.equal(new Map(await h.handle({ stage: 'connect', ip: 'not-an-ip', session: 'z' })).get('reason'), 'bad-input');
  // a block-listed client is refused at connect with 554, and with 550 if first asked at RCPT
  assert.equal(new Map(await h.handle({ stage: 'connect', ip: '192.0.2.99' })).get('message'), '554 5.7.1 Client host [192.0.2.99] blocked by local policy');
  assert.equal(new Map(await h.handle({ stage: 'rcpt', ip: '192.0.2.99', recipient: 'b@dest.example', sender: 'a@example.com' })).get('message'), '550 5.7.1 Client host [192.0.2.99] blocked by local policy');
  // FILTER with a subject tag (the test hook tags mail from tag@): the new Subject, the old one removed
  const tag = new Map(
    await h.handle({ stage: 'data', ip: '127.0.0.1', helo: 'client.adapter.example', sender: 'tag@pass.adapter.example', recipients: ['b@dest.example'], headers: 'Subject: hello\n there\n' }),
  );
  assert.equal(tag.get('action'), 'FILTER');
  assert.equal(tag.get('remove_header'), 'Subject');
  assert.match(tag.get('add_header')!, /\nSubject: \[SUSPECT\] hello\n there$/);
  const discard = new Map(await h.handle({ stage: 'data', ip: '127.0.0.1', helo: 'client.adapter.example', sender: 'discard@pass.adapter.example', recipients: ['b@dest.example'] }));
  assert.deepEqual([discard.get('action'), discard.get('add_header')], ['DISCARD', '']);
});

/** Asks like Exim: connect, write, half-close, read to the end. */
async function readsocket(port: number, request: string, halfClose = true): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(request);
  if (halfClose) socket.end();
  let out = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    out += d;
  });
  await once(socket, 'close');
  return out;
}

test('server: answers one line and closes, with Exim\'s half-close and with shutdown=no (the empty line ends the request)', async () => {
  const rs = createReadsocketServer({ engine: adapterEngine(), maxRequestBytes: 4096 });
  rs.server.listen(0, '127.0.0.1');
  await once(rs.server, 'listening');
  const port = (rs.server.address() as net.AddressInfo).port;
  try {
    const request = 'stage=mail\nip=127.0.0.1\nhelo=client.adapter.example\nsender=a@fail.adapter.example\n\n';
    const answer = await readsocket(port, request);
    assert.match(answer, /^action="REJECT" message="550 5\.7\.23 SPF: 'fail\.adapter\.example' does not designate '127\.0\.0\.1' as permitted sender" reason="spf-fail" add_header="" remove_header=""\n$/);
    assert.equal(await readsocket(port, request, false), answer);
    // split into tiny writes, still one request
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    for (const ch of 'stage=connect\nip=127.0.0.1\n\n') socket.write(ch);
    let out = '';
    socket.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await once(socket, 'close');
    assert.match(out, /^action="CONTINUE"/);
    // garbage and oversize requests are deferred, never accepted
    assert.match(await readsocket(port, 'hello\n\n'), /^action="DEFER" message="451 4\.3\.0 checkid could not read the request"/);
    assert.match(await readsocket(port, `stage=data\nheaders=${'A'.repeat(5000)}\n\n`), /^action="DEFER" message="451 4\.3\.0 checkid request too long"/);
  } finally {
    await rs.shutdown();
  }
});

test('the Exim snippet: every stage asks, with the socket given; integrate prints all four parts', () => {
  const s = eximSnippet({ socket: 'inet:127.0.0.1:1234', timeout: '20s' });
  assert.match(s.main, /^CHECKID_SOCKET {2}= inet:127\.0\.0\.1:1234$/m);
  assert.match(s.main, /^CHECKID_TIMEOUT = 20s$/m);
  for (const stage of ['connect', 'helo', 'mail', 'quit']) assert.match(s.acls, new RegExp(`acl += checkid ${stage}$`, 'm'));
  assert.match(s.rcpt, /acl += checkid rcpt$/m);
  assert.match(s.rcpt, /discard condition/);
  assert.match(s.data, /add_header += \$\{extract\{add_header\}\{\$acl_m_checkid\}\}/);
  assert.doesNotMatch(s.acls.slice(s.acls.indexOf('acl_checkid_connect:'), s.acls.indexOf('acl_checkid_mail:')), /discard/);
  const text = eximSnippetText({ socket: 'inet:127.0.0.1:1234' });
  for (const part of Object.values(eximSnippet({ socket: 'inet:127.0.0.1:1234' }))) assert.ok(text.includes(part));
  assert.equal(eximSocket('inet:127.0.0.1:9997'), 'inet:127.0.0.1:9997');
  assert.equal(eximSocket('127.0.0.1:9997'), 'inet:127.0.0.1:9997');
  assert.equal(eximSocket('inet6:[::1]:9997'), 'inet:[::1]:9997');
  assert.equal(eximSocket('unix:/run/checkid/rs.sock'), '/run/checkid/rs.sock');
  assert.throws(() => eximSocket('tcp:x'), /expected inet:HOST:PORT/);
});
