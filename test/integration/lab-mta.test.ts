/**
 * The real-MTA lab itself, before any milter: a private Postfix and a private Sendmail each take
 * mail on a 127.0.0.1 high port and relay it to our sink unchanged, several messages on one
 * connection; stopping them leaves nothing listening. (scripts/lab/install.sh installs the lab;
 * without it these tests skip loudly, and fail under CI.)
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { labSkip, waitUntil } from '../support/lab/lab.ts';
import type { MtaName, MtaOptions, RunningMta } from '../support/lab/mta.ts';
import { postfixMainCf, startPostfix } from '../support/lab/postfix.ts';
import { sendmailMc, startSendmail } from '../support/lab/sendmail.ts';
import { startSink } from '../support/lab/sink.ts';
import { message, SmtpClient, transaction } from '../support/smtp-client.ts';

const START: Record<MtaName, (o: MtaOptions) => Promise<RunningMta>> = {
  postfix: startPostfix,
  sendmail: startSendmail,
};

test('the generated configs point at the sink and the milter', () => {
  const pf = postfixMainCf('/lab', {
    sinkPort: 2526,
    milter: 'inet:127.0.0.1:8891',
    milterDefaultAction: 'accept',
  });
  assert.match(pf, /^relayhost = \[127\.0\.0\.1\]:2526$/m);
  assert.match(pf, /^smtpd_milters = inet:127\.0\.0\.1:8891$/m);
  assert.match(pf, /^milter_default_action = accept$/m);
  assert.match(pf, /^queue_directory = \/lab\/queue$/m);
  assert.doesNotMatch(postfixMainCf('/lab', { sinkPort: 2526 }), /milter/);

  const sm = sendmailMc('/lab', 2525, { sinkPort: 2526, milter: 'inet:127.0.0.1:8891' });
  assert.match(sm, /DAEMON_OPTIONS\(`Family=inet, Name=MTA-v4, Addr=127\.0\.0\.1, Port=2525'\)/);
  assert.match(sm, /define\(`RELAY_MAILER_ARGS', `TCP \$h 2526'\)/);
  assert.match(sm, /INPUT_MAIL_FILTER\(`checkid', `S=inet:8891@127\.0\.0\.1, F=T, /);
  assert.match(
    sendmailMc('/lab', 2525, { sinkPort: 2526, milter: 'unix:/run/m.sock', milterDefaultAction: 'accept' }),
    /S=unix:\/run\/m\.sock, F=, /,
  );
  assert.throws(
    () => sendmailMc('/lab', 2525, { sinkPort: 1, milter: 'tcp:nope' }),
    /expected inet:HOST:PORT or unix:\/path/,
  );
});

for (const mta of ['postfix', 'sendmail'] as const) {
  test(`${mta} relays plain mail to the sink, two messages on one connection`, {
    skip: labSkip(mta),
    timeout: 120_000,
  }, async () => {
    const sink = await startSink();
    const server = await START[mta]({ sinkPort: sink.port });
    try {
      const client = await SmtpClient.connect(server.port);
      assert.equal(client.greeting.code, 220);
      await client.ehlo('client.lab.example');
      const first = await transaction(client, {
        from: 'alice@lab.example',
        to: ['bob@dest.example'],
        message: message({
          subject: 'first',
          headers: ['X-Lab: one'],
          body: 'line 1\r\n.leading dot\r\nline 3',
        }),
      });
      assert.equal(first.final.code, 250, first.final.raw.join('\n'));
      await client.rset();
      const second = await transaction(client, {
        from: '',
        to: ['carol@dest.example', 'dave@dest.example'],
        message: message({ subject: 'second' }),
      });
      assert.equal(second.final.code, 250, second.final.raw.join('\n'));
      await client.quit();

      const [a, b] = await sink.waitFor(2, 30_000).catch((err) => {
        throw new Error(`${(err as Error).message}\n--- ${mta} log ---\n${server.logTail()}`);
      });
      const bySubject = (s: string) => [a!, b!].find((m) => m.data.includes(`Subject: ${s}`))!;
      const one = bySubject('first');
      const two = bySubject('second');
      assert.equal(one.mailFrom, 'alice@lab.example');
      assert.deepEqual(one.rcptTo, ['bob@dest.example']);
      assert.equal(two.mailFrom, '');
      assert.deepEqual(two.rcptTo.sort(), ['carol@dest.example', 'dave@dest.example']);
      // the MTA put its own Received: on top, and kept ours and the body as sent
      assert.equal(one.headers[0]![0], 'Received');
      assert.match(
        one.headers[0]![1],
        mta === 'postfix' ? /by mx\.lab\.example \(Postfix\)/ : /by smx\.lab\.example \(8\.17/,
      );
      assert.deepEqual(
        one.headers.find(([n]) => n === 'X-Lab'),
        ['X-Lab', ' one'],
      );
      assert.ok(
        one.data.endsWith('\r\n\r\nline 1\r\n.leading dot\r\nline 3\r\n'),
        JSON.stringify(one.data.slice(-60)),
      );
      // and nothing stays behind in its queue
      await waitUntil(
        () => server.queued() === 0,
        10_000,
        () => `${server.queued()} messages still queued in ${mta}`,
      );
    } finally {
      await server.stop();
      await sink.close();
    }
    // stopped means stopped: nothing answers on its port any more
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(server.port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.once('error', () => resolve(true));
    });
    assert.ok(refused, `${mta} still listens on ${server.port} after stop()`);
  });
}
