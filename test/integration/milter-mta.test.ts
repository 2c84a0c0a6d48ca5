/**
 * checkid's milter proven against real MTAs: the same scenarios run through a private Postfix 3.7
 * and a private Sendmail 8.17 (test/support/lab/), each pointed at the real `checkid milter`
 * daemon, with the seed and lab zones served by the real test DNS server. A real SMTP client sends
 * the mail; we assert on what the MTA did: the replies the client saw, and the messages as they
 * reached the sink behind the MTA.
 *
 * The lab's clients connect from 127.0.0.1, for which test/fixtures/lab-zone.yaml has passing and
 * failing SPF names; on Postfix, XCLIENT also lets a test be 192.0.2.1 and get the seed's replies.
 * Installed by scripts/lab/install.sh (run by .ci/run); without it the tests skip loudly here and
 * fail under CI.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { createResolver } from '../../src/dns/config.ts';
import { Engine, staticPolicy } from '../../src/engine/engine.ts';
import { loadConfigFile } from '../../src/policy/config.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { FIXTURES, seedZone } from '../support/fixtures.ts';
import { type RunningMilter, startCheckidMilter } from '../support/lab/checkid.ts';
import { labSkip, socketDir } from '../support/lab/lab.ts';
import type { MtaName, MtaOptions, RunningMta } from '../support/lab/mta.ts';
import { postfixGid, startPostfix } from '../support/lab/postfix.ts';
import { startSendmail } from '../support/lab/sendmail.ts';
import { type Sink, type SinkMessage, startSink } from '../support/lab/sink.ts';
import { message, SmtpClient, type SmtpReply, transaction } from '../support/smtp-client.ts';
import type { ZoneData } from '../support/zone.ts';

const START: Record<MtaName, (o: MtaOptions) => Promise<RunningMta>> = {
  postfix: startPostfix,
  sendmail: startSendmail,
};
const CONFIG = join(FIXTURES, 'lab.yaml');
const HELO = 'client.lab.example';
const AUTHSERV_ID = 'mx.lab.example';
const LOAD_MESSAGES = 500;
const LOAD_CONNECTIONS = 10;

const labZone = (): ZoneData => parse(readFileSync(join(FIXTURES, 'lab-zone.yaml'), 'utf8')) as ZoneData;

let dns: DnsTestServer;
let milter: RunningMilter;
let resolver: ReturnType<typeof createResolver>;
let engine: Engine;

/**
 * The reply line an MTA gives the client for a milter reply at MAIL or RCPT (`address`): Sendmail
 * puts the address before the text of a permanent (5xx) one, not of a 4xx; Postfix passes the text as is.
 */
function expectedLine(mta: MtaName, code: number, xcode: string, text: string, address?: string): string {
  const prefixed = mta === 'sendmail' && address !== undefined && code >= 500;
  return prefixed ? `${code} ${xcode} <${address}>... ${text}` : `${code} ${xcode} ${text}`;
}

/** What checkid itself decides for a message from 127.0.0.1 (the headers it must prepend, in order). */
async function verdictFor(mailFrom: string, rcpt: string[], raw: string) {
  const end = raw.indexOf('\r\n\r\n');
  return engine.checkID({
    ip: '127.0.0.1',
    helo: HELO,
    mailFrom,
    rcpt,
    headers: raw.slice(0, end + 2),
    body: raw.slice(end + 4),
  });
}

/** The header lines a verdict's headers make at the top of the delivered message: the last one on top. */
function headerLines(headers: Array<{ label: string; text: string }>): string[] {
  return [...headers].reverse().flatMap((h) => `${h.label} ${h.text}`.split('\r\n'));
}

const lastLines = (text: string, n: number) => text.trimEnd().split('\n').slice(-n).join('\n');

describe('checkid milter behind real MTAs', {
  skip: labSkip('postfix', 'sendmail'),
  timeout: 600_000,
}, () => {
  before(async () => {
    dns = await startDnsServer({ zone: { ...seedZone(), ...labZone() } });
    milter = await startCheckidMilter({ config: CONFIG, resolver: dns.address });
    resolver = createResolver({ servers: [dns.address], timeoutMs: 400, attempts: 1 });
    const config = loadConfigFile(CONFIG);
    engine = new Engine({ resolver, policy: staticPolicy(config, resolver) });
  });
  after(async () => {
    await milter?.stop();
    await resolver?.close();
    await dns?.close();
  });

  for (const mta of ['postfix', 'sendmail'] as const) {
    describe(mta, () => {
      let sink: Sink;
      let server: RunningMta;
      before(async () => {
        sink = await startSink();
        server = await START[mta]({
          sinkPort: sink.port,
          milter: milter.address,
          milterDefaultAction: 'tempfail',
        });
      });
      after(async () => {
        await server?.stop();
        await sink?.close();
      });

      /** Runs a scenario; a failure carries the MTA's and checkid's log tails. */
      const scenario = (name: string, fn: () => Promise<void>) =>
        test(name, async () => {
          try {
            await fn();
          } catch (err) {
            const e = err as Error;
            e.message += `\n--- ${mta} log (tail) ---\n${server.logTail(25)}\n--- checkid milter (tail) ---\n${lastLines(milter.output(), 15)}`;
            throw e;
          }
        });

      const connect = async () => {
        const client = await SmtpClient.connect(server.port);
        await client.ehlo(HELO);
        return client;
      };

      /** Sends one message on its own connection; returns the final reply. */
      const send = async (from: string, raw: string, to = ['rcpt@dest.example']) => {
        const client = await connect();
        try {
          return await transaction(client, { from, to, message: raw });
        } finally {
          await client.quit();
        }
      };

      const assertReply = (reply: SmtpReply, line: string) => {
        assert.deepEqual(reply.raw, [line], `the client saw:\n${reply.raw.join('\n')}`);
      };

      scenario(
        'a sender whose SPF fails is rejected at MAIL with our code, enhanced code and text',
        async () => {
          const from = 'someone@fail.lab.example';
          const expected = await verdictFor(from, [], message({}));
          assert.equal(expected.action, 'REJECT');
          const { code, xcode, text } = expected.reply;
          assert.deepEqual(
            [code, xcode, text],
            [550, '5.7.23', "SPF: 'fail.lab.example' does not designate '127.0.0.1' as permitted sender"],
          );
          const r = await send(from, message({ subject: 'spf fail' }));
          assert.equal(r.data, null, 'no DATA after a rejected MAIL');
          assertReply(r.mail, expectedLine(mta, code, xcode, text, from));
        },
      );

      scenario('DNS timing out gives TEMPFAIL 451 4.4.3 at MAIL', async () => {
        const from = 'someone@temp.lab.example';
        const r = await send(from, message({ subject: 'dns timeout' }));
        assertReply(
          r.mail,
          expectedLine(
            mta,
            451,
            '4.4.3',
            "Temporary DNS failure checking SPF of 'temp.lab.example'; try again later",
            from,
          ),
        );
      });

      scenario(
        'accepted mail reaches the sink with our headers on top, above the MTA Received:, folded as sent',
        async () => {
          const raw = message({
            subject: `headers ${mta}`,
            from: 'pass@pass.lab.example',
            headers: ['X-Lab-Case: headers'],
          });
          const r = await send('pass@pass.lab.example', raw);
          assert.equal(r.final.code, 250, r.final.raw.join('\n'));
          const got = await sink.find('X-Lab-Case: headers');
          const expected = await verdictFor('pass@pass.lab.example', ['rcpt@dest.example'], raw);
          assert.equal(expected.action, 'FILTER');
          assert.deepEqual(
            expected.headers.map((h) => h.label),
            ['Authentication-Results:', 'Authent:'],
          );
          const ours = headerLines(expected.headers);
          assert.ok(ours.length > 2, 'the Authentication-Results header is long enough to be folded');
          assert.deepEqual(
            got.headerLines.slice(0, ours.length),
            ours,
            'our header fields, byte for byte, at the very top',
          );
          assert.match(
            got.headerLines[ours.length]!,
            /^Received: from /,
            "the MTA's own Received: right below ours",
          );
          assert.match(
            got.headerLines.slice(ours.length).join('\n'),
            mta === 'postfix' ? /by mx\.lab\.example \(Postfix\)/ : /by smx\.lab\.example \(8\.17/,
          );
          assert.ok(got.data.endsWith('\r\n\r\nHello from the checkid lab.\r\n'), 'body unchanged');
        },
      );

      scenario(
        'a forged Authentication-Results with our authserv-id is removed, others are kept',
        async () => {
          const forged = `Authentication-Results: ${AUTHSERV_ID}; spf=pass smtp.mailfrom=forged@pass.lab.example`;
          const foreign = 'Authentication-Results: other.example; spf=fail smtp.mailfrom=x@pass.lab.example';
          const raw = message({ subject: 'forged', headers: ['X-Lab-Case: forged', forged, foreign] });
          const r = await send('pass@pass.lab.example', raw);
          assert.equal(r.final.code, 250, r.final.raw.join('\n'));
          const got = await sink.find('X-Lab-Case: forged');
          assert.ok(!got.data.includes('forged@pass.lab.example'), 'the forged header is gone');
          const ar = got.headers
            .filter(([n]) => n.toLowerCase() === 'authentication-results')
            .map(([, v]) => v.trim());
          assert.equal(ar.length, 2, `one of ours and the foreign one:\n${ar.join('\n')}`);
          assert.ok(ar[0]!.startsWith(`${AUTHSERV_ID}; `), 'ours is the new one on top');
          assert.equal(ar[1], 'other.example; spf=fail smtp.mailfrom=x@pass.lab.example');
        },
      );

      scenario(
        'a policy hook answering DISCARD: the client gets 250, the sink never sees the message',
        async () => {
          const client = await connect();
          try {
            const dropped = await transaction(client, {
              from: 'discard@pass.lab.example',
              to: ['rcpt@dest.example'],
              message: message({ subject: 'discard me', headers: ['X-Lab-Case: discard'] }),
            });
            assert.equal(dropped.final.code, 250, dropped.final.raw.join('\n'));
            // a message sent after it on the same connection arrives; the discarded one never does
            const next = await transaction(client, {
              from: 'pass@pass.lab.example',
              to: ['rcpt@dest.example'],
              message: message({ subject: 'after discard', headers: ['X-Lab-Case: after-discard'] }),
            });
            assert.equal(next.final.code, 250, next.final.raw.join('\n'));
          } finally {
            await client.quit();
          }
          await sink.find('X-Lab-Case: after-discard');
          assert.equal(
            sink.messages.filter((m) => m.data.includes('X-Lab-Case: discard\r\n')).length,
            0,
            'the discarded message reached the sink',
          );
          assert.match(
            server.logs(),
            mta === 'postfix' ? /milter-discard: END-OF-MESSAGE from/ : /discarded/i,
          );
        },
      );

      scenario(
        'several transactions on one connection: accept, RSET, reject, accept, each judged on its own',
        async () => {
          const client = await connect();
          let results: Awaited<ReturnType<typeof transaction>>[];
          try {
            const first = await transaction(client, {
              from: 'first@pass.lab.example',
              to: ['a@dest.example'],
              message: message({ subject: 'multi 1', headers: ['X-Lab-Case: multi-1'] }),
            });
            await client.rset();
            const second = await transaction(client, {
              from: 'second@fail.lab.example',
              to: ['b@dest.example'],
              message: message({ subject: 'multi 2', headers: ['X-Lab-Case: multi-2'] }),
            });
            const third = await transaction(client, {
              from: 'third@pass.lab.example',
              to: ['c@dest.example', 'd@dest.example'],
              message: message({ subject: 'multi 3', headers: ['X-Lab-Case: multi-3'] }),
            });
            results = [first, second, third];
          } finally {
            await client.quit();
          }
          assert.deepEqual(
            results.map((r) => r.final.code),
            [250, 550, 250],
          );
          assertReply(
            results[1]!.mail,
            expectedLine(
              mta,
              550,
              '5.7.23',
              "SPF: 'fail.lab.example' does not designate '127.0.0.1' as permitted sender",
              'second@fail.lab.example',
            ),
          );
          const one = await sink.find('X-Lab-Case: multi-1');
          const three = await sink.find('X-Lab-Case: multi-3');
          const arOf = (m: SinkMessage) => m.headers.find(([n]) => n === 'Authentication-Results')?.[1] ?? '';
          assert.match(arOf(one), /smtp\.mailfrom=first@pass\.lab\.example/);
          assert.match(arOf(three), /smtp\.mailfrom=third@pass\.lab\.example/);
          assert.doesNotMatch(
            arOf(three),
            /first@/,
            "nothing of the first message's facts in the third's headers",
          );
          assert.deepEqual(three.rcptTo.sort(), ['c@dest.example', 'd@dest.example']);
          assert.equal(one.headers.filter(([n]) => n === 'Authentication-Results').length, 1);
          assert.equal(three.headers.filter(([n]) => n === 'Authentication-Results').length, 1);
          assert.equal(sink.messages.filter((m) => m.data.includes('X-Lab-Case: multi-2')).length, 0);
        },
      );

      if (mta === 'postfix') {
        scenario('XCLIENT as 192.0.2.1: the seed senders get the seed verdicts', async () => {
          const client = await SmtpClient.connect(server.port);
          try {
            await client.ehlo(HELO);
            await client.xclient({ ADDR: '192.0.2.1', NAME: 'mx.example.com' });
            await client.ehlo('mx.example.com');
            const net = await transaction(client, {
              from: 'x@example.net',
              to: ['rcpt@dest.example'],
              message: message({}),
            });
            assertReply(
              net.mail,
              "550 5.7.23 SPF: 'example.net' does not designate '192.0.2.1' as permitted sender",
            );
            const com = await transaction(client, {
              from: 'x@example.com',
              to: ['rcpt@dest.example'],
              message: message({ headers: ['X-Lab-Case: xclient'] }),
            });
            assert.equal(com.final.code, 250, com.final.raw.join('\n'));
          } finally {
            await client.quit();
          }
          const got = await sink.find('X-Lab-Case: xclient');
          assert.match(got.headerLines[0]!, /^Authent: 192\.0\.2\.1 mx\.example\.com SPF1 PASS/);
          assert.match(got.headers[1]![1], /spf=pass[\s\S]*smtp\.mailfrom=x@example\.com/);
        });
      }

      scenario(
        'checkid on a unix socket: down, the MTA follows its default (tempfail); restarted, it serves again',
        async () => {
          // The documented set-up: a directory of its own under /run, mode 2750, group of the MTA's
          // user (the socket, 0660, inherits it), so Sendmail finds it safe and Postfix may connect.
          const dir = socketDir(mta === 'postfix' ? postfixGid() : 0);
          const listen = `unix:${join(dir, 'milter.sock')}`;
          let own: RunningMilter | null = null;
          let ownSink: Sink | null = null;
          let ownMta: RunningMta | null = null;
          const attempt = async (tag: string) => {
            const client = await SmtpClient.connect(ownMta!.port);
            try {
              for (const line of [
                `EHLO ${HELO}`,
                'MAIL FROM:<pass@pass.lab.example>',
                'RCPT TO:<rcpt@dest.example>',
              ]) {
                const r = await client.command(line);
                if (r.code >= 400) return r;
              }
              return await client.data(message({ subject: tag, headers: [`X-Lab-Case: ${tag}`] }));
            } finally {
              await client.quit();
            }
          };
          try {
            own = await startCheckidMilter({ config: CONFIG, resolver: dns.address, listen });
            ownSink = await startSink();
            ownMta = await START[mta]({
              sinkPort: ownSink.port,
              milter: listen,
              milterDefaultAction: 'tempfail',
            });
            const up = await attempt('socket-up');
            assert.equal(up.code, 250, up.raw.join('\n'));
            assert.match(
              (await ownSink.find('X-Lab-Case: socket-up')).headerLines[0]!,
              /^Authent: 127\.0\.0\.1 /,
            );
            await own.stop();
            const down = await attempt('socket-down');
            assertReply(
              down,
              mta === 'postfix'
                ? '451 4.7.1 Service unavailable - try again later'
                : '451 4.3.2 Please try again later',
            );
            own = await startCheckidMilter({ config: CONFIG, resolver: dns.address, listen });
            const again = await attempt('socket-again');
            assert.equal(again.code, 250, again.raw.join('\n'));
            assert.match(
              (await ownSink.find('X-Lab-Case: socket-again')).headerLines[0]!,
              /^Authent: 127\.0\.0\.1 /,
            );
            assert.equal(
              ownSink.messages.filter((m) => m.data.includes('X-Lab-Case: socket-down')).length,
              0,
            );
            // (while checkid is down Sendmail logs the missing socket as "unsafe", with no reason)
            assert.doesNotMatch(
              ownMta.logs(),
              /unsafe: (group|world) writable/i,
              'Sendmail found the socket directory safe',
            );
          } catch (err) {
            (err as Error).message +=
              `\n--- ${mta} (unix socket) log ---\n${ownMta?.logTail(25)}\n--- checkid ---\n${lastLines(own?.output() ?? '', 10)}`;
            throw err;
          } finally {
            await ownMta?.stop();
            await own?.stop();
            await ownSink?.close();
          }
        },
      );

      scenario(
        `a load run: ${LOAD_MESSAGES} messages on ${LOAD_CONNECTIONS} connections, delivered + rejected == sent`,
        async () => {
          const before = sink.messages.length;
          let sent = 0;
          let accepted = 0;
          let rejected = 0;
          const other: string[] = [];
          const perConnection = LOAD_MESSAGES / LOAD_CONNECTIONS;
          await Promise.all(
            Array.from({ length: LOAD_CONNECTIONS }, async (_, c) => {
              const client = await connect();
              try {
                for (let i = 0; i < perConnection; i++) {
                  const n = c * perConnection + i;
                  const domain = n % 5 === 4 ? 'fail.lab.example' : 'pass.lab.example';
                  const r = await transaction(client, {
                    from: `load${n}@${domain}`,
                    to: ['load@dest.example'],
                    message: message({ subject: `load ${n}`, headers: [`X-Lab-Load: ${n}`] }),
                  });
                  sent++;
                  if (r.final.code === 250) accepted++;
                  else if (r.final.code === 550) rejected++;
                  else other.push(r.final.raw.join(' '));
                }
              } finally {
                await client.quit();
              }
            }),
          );
          assert.deepEqual(other, [], 'no reply other than 250 or 550');
          assert.equal(sent, LOAD_MESSAGES);
          assert.equal(rejected, LOAD_MESSAGES / 5, 'every fifth sender fails SPF');
          await sink.waitFor(before + accepted, 120_000);
          const delivered = sink.messages.slice(before).filter((m) => m.data.includes('X-Lab-Load: '));
          assert.equal(delivered.length + rejected, sent, 'delivered + rejected == sent');
          const numbers = new Set(delivered.map((m) => /X-Lab-Load: (\d+)/.exec(m.data)![1]));
          assert.equal(numbers.size, delivered.length, 'no message delivered twice');
          assert.ok(
            delivered.every((m) =>
              m.headerLines[0]!.startsWith('Authent: 127.0.0.1 client.lab.example SPF1 PASS'),
            ),
            'every delivered message carries our headers on top',
          );
        },
      );
    });
  }
});
