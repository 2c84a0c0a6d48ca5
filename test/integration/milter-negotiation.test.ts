/**
 * What checkid's milter negotiates, derived from the loaded policy, proven through real MTAs: a
 * recording proxy (test/support/lab/milter-recorder.ts) sits between a private Postfix 3.7 (and
 * Sendmail 8.17 where the MTA matters) and the real `checkid milter` daemon, so each test sees the
 * OPTNEG answer, every step the MTA sent, and every burst of answers checkid wrote, while the
 * client and the sink show the outcome: the steps the policy needs still arrive (DKIM passes on a
 * signed message, per-recipient refusals happen at RCPT, a client blocked at CONNECT is refused at
 * MAIL) and the MTA waits for nothing else.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { parse, stringify } from 'yaml';
import { type MilterResponse, SMFIP } from '../../src/adapters/milter/wire.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { FIXTURES, seedZone, tempDir } from '../support/fixtures.ts';
import { type RunningMilter, startCheckidMilter } from '../support/lab/checkid.ts';
import { labSkip, waitUntil } from '../support/lab/lab.ts';
import {
  type MilterRecorder,
  type RecordedConnection,
  startMilterRecorder,
} from '../support/lab/milter-recorder.ts';
import type { MtaName, RunningMta } from '../support/lab/mta.ts';
import { startPostfix } from '../support/lab/postfix.ts';
import { startSendmail } from '../support/lab/sendmail.ts';
import { type Sink, startSink } from '../support/lab/sink.ts';
import { message, SmtpClient, transaction } from '../support/smtp-client.ts';
import type { ZoneData } from '../support/zone.ts';

const HELO = 'client.lab.example';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ZONE: ZoneData = {
  ...seedZone(),
  ...(parse(readFileSync(join(FIXTURES, 'lab-zone.yaml'), 'utf8')) as ZoneData),
  'sel._domainkey.pass.lab.example': [
    { TXT: `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}` },
  ],
};

/** test/fixtures/lab.yaml without its hook, changed by `mutate`, written to a file of its own. */
function labConfig(mutate: (c: Record<string, unknown>) => void = () => {}): string {
  const c = parse(readFileSync(join(FIXTURES, 'lab.yaml'), 'utf8')) as Record<string, unknown>;
  delete c.hook;
  mutate(c);
  const file = join(tempDir('checkid-negotiation-'), 'checkid.yaml');
  writeFileSync(file, stringify(c));
  return file;
}

/** A message signed by an independent DKIM implementation (mailauth), d=pass.lab.example. */
async function signed(subject: string): Promise<string> {
  const raw = message({ subject, from: 'pass@pass.lab.example', headers: [`X-Lab-Case: ${subject}`] });
  const { signatures } = (await dkimSign(Buffer.from(raw), {
    signatureData: [
      {
        signingDomain: 'pass.lab.example',
        selector: 'sel',
        privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
        canonicalization: 'relaxed/simple',
      },
    ],
  } as never)) as { signatures: string };
  return signatures + raw;
}

const kinds = (rs: Array<{ kind: string }>) => rs.map((r) => r.kind);
/** the step commands (MACRO frames aside) */
const steps = (c: RecordedConnection) => kinds(c.commands).filter((k) => k !== 'MACRO');
const optneg = (c: RecordedConnection) => c.responses[0] as Extract<MilterResponse, { kind: 'OPTNEG' }>;
const has = (flags: number, flag: number) => (flags & flag) === flag;
/** each named protocol flag is in `flags` (or, with `yes` false, is not) */
const negotiated = (flags: number, names: Array<keyof typeof SMFIP>, yes = true) => {
  for (const name of names)
    assert.equal(has(flags, SMFIP[name]), yes, `${name} ${yes ? '' : 'not '}negotiated`);
};

describe('milter negotiation derived from the policy, through real MTAs', {
  skip: labSkip('postfix', 'sendmail'),
  timeout: 600_000,
}, () => {
  let dns: DnsTestServer;
  let sink: Sink;
  let recorder: MilterRecorder;
  let milter: RunningMilter | null = null;
  const mtas: Partial<Record<MtaName, RunningMta>> = {};

  before(async () => {
    dns = await startDnsServer({ zone: ZONE });
    sink = await startSink();
    // the MTAs are pointed at the recorder once; each test puts its own checkid behind it
    recorder = await startMilterRecorder('inet:127.0.0.1:9');
    const options = {
      sinkPort: sink.port,
      milter: recorder.address,
      milterDefaultAction: 'tempfail' as const,
    };
    [mtas.postfix, mtas.sendmail] = await Promise.all([startPostfix(options), startSendmail(options)]);
  });
  after(async () => {
    await Promise.all([mtas.postfix?.stop(), mtas.sendmail?.stop()]);
    await milter?.stop();
    await recorder?.close();
    await sink?.close();
    await dns?.close();
  });

  /** A fresh checkid daemon with `config` behind the recorder, the recording cleared. */
  const use = async (config: string) => {
    await milter?.stop();
    milter = await startCheckidMilter({ config, resolver: dns.address });
    recorder.retarget(milter.address);
    recorder.clear();
  };

  const connect = async (mta: MtaName) => {
    const client = await SmtpClient.connect(mtas[mta]!.port);
    await client.ehlo(HELO);
    return client;
  };

  /** One message from pass@pass.lab.example through `mta` on a session of its own: accepted. */
  const accepted = async (mta: MtaName, raw: string) => {
    const client = await connect(mta);
    const r = await transaction(client, {
      from: 'pass@pass.lab.example',
      to: ['rcpt@dest.example'],
      message: raw,
    });
    await client.quit();
    assert.equal(r.final.code, 250, r.final.raw.join('\n'));
  };

  /** the milter connections of finished SMTP sessions (each ends with QUIT) */
  const finished = async (count: number) => {
    await waitUntil(
      () => recorder.connections.filter((c) => c.commands.at(-1)?.kind === 'QUIT').length >= count,
      10_000,
      () => `${recorder.connections.length} milter connections recorded`,
    );
    return recorder.connections;
  };

  const withLogs = (mta: MtaName, fn: () => Promise<void>) => async () => {
    try {
      await fn();
    } catch (err) {
      const e = err as Error;
      e.message += `\n--- ${mta} log (tail) ---\n${mtas[mta]?.logTail(20)}\n--- checkid (tail) ---\n${milter?.output().trimEnd().split('\n').slice(-10).join('\n')}`;
      throw e;
    }
  };

  for (const mta of ['postfix', 'sendmail'] as const) {
    test(
      `${mta}, the lab policy (DKIM, ARC, no per-recipient rules, no hook): three round trips a message; DKIM still passes`,
      withLogs(mta, async () => {
        await use(labConfig());
        await accepted(mta, await signed(`dkim ${mta}`));
        const [c] = await finished(1);
        const flags = optneg(c!).protocol;
        negotiated(flags, [
          'NR_CONN',
          'NR_HELO',
          'NR_RCPT',
          'NR_HDR',
          'NR_EOH',
          'NR_BODY',
          'NODATA',
          'NOUNKNOWN',
        ]);
        negotiated(flags, ['NR_MAIL', 'NOBODY', 'NOEOH', 'NOHDRS'], false);
        // every step the policy needs arrived, DATA not
        const sent = steps(c!);
        for (const k of ['CONNECT', 'HELO', 'MAIL', 'RCPT', 'HEADER', 'EOH', 'BODY', 'BODYEOB'])
          assert.ok(sent.includes(k), `${mta} sent ${k}`);
        assert.ok(!sent.includes('DATA'));
        // answers only to OPTNEG, MAIL and the end of the message, each burst in one write
        assert.deepEqual(c!.responseBursts.map(kinds), [
          ['OPTNEG'],
          ['CONTINUE'],
          ['INSHEADER', 'INSHEADER', 'ACCEPT'],
        ]);
        // the header fields and the body reached the engine byte for byte
        const got = await sink.find(`X-Lab-Case: dkim ${mta}`);
        const ar = got.headers.find(([n]) => n === 'Authentication-Results')![1];
        assert.match(ar.replace(/\r\n\s+/g, ' '), /dkim=pass .*header\.d=pass\.lab\.example/);
        assert.match(ar.replace(/\r\n\s+/g, ' '), /dmarc=pass/);
      }),
    );

    test(
      `${mta}, answer_at end_of_message: two round trips a message; an SPF failure is refused after DATA, the same text`,
      withLogs(mta, async () => {
        await use(labConfig((c) => (c.milter = { ...(c.milter as object), answer_at: 'end_of_message' })));
        const client = await connect(mta);
        let refused: Awaited<ReturnType<typeof transaction>>;
        let accepted: Awaited<ReturnType<typeof transaction>>;
        try {
          refused = await transaction(client, {
            from: 'someone@fail.lab.example',
            to: ['rcpt@dest.example'],
            message: message({ headers: [`X-Lab-Case: eom-refused ${mta}`] }),
          });
          accepted = await transaction(client, {
            from: 'pass@pass.lab.example',
            to: ['rcpt@dest.example'],
            message: await signed(`eom-accepted ${mta}`),
          });
        } finally {
          await client.quit();
        }
        // MAIL and RCPT pass; the refusal is the answer to the final dot, with the text it has at MAIL
        assert.equal(refused.mail.code, 250);
        assert.equal(refused.rcpt[0]!.code, 250);
        assert.deepEqual(refused.final.raw, [
          "550 5.7.23 SPF: 'fail.lab.example' does not designate '127.0.0.1' as permitted sender",
        ]);
        assert.equal(accepted.final.code, 250, accepted.final.raw.join('\n'));
        const got = await sink.find(`X-Lab-Case: eom-accepted ${mta}`);
        assert.match(
          got.headers.find(([n]) => n === 'Authentication-Results')![1].replace(/\r\n\s+/g, ' '),
          /dkim=pass/,
        );
        assert.equal(
          sink.messages.filter((m) => m.data.includes(`eom-refused ${mta}`)).length,
          0,
          'the refused message was not delivered',
        );
        const [c] = await finished(1);
        negotiated(optneg(c!).protocol, ['NR_CONN', 'NR_HELO', 'NR_MAIL', 'NR_RCPT']);
        // answers to OPTNEG and each end of message only
        assert.deepEqual(c!.responseBursts.map(kinds), [
          ['OPTNEG'],
          ['REPLYCODE'],
          ['INSHEADER', 'INSHEADER', 'ACCEPT'],
        ]);
      }),
    );

    test(
      `${mta}, a client blocked at CONNECT: EHLO passes, MAIL gets the connect verdict`,
      withLogs(mta, async () => {
        await use(labConfig((c) => (c.prescreen = { ...(c.prescreen as object), block: ['127.0.0.1'] })));
        const client = await connect(mta);
        try {
          const r = await transaction(client, {
            from: 'pass@pass.lab.example',
            to: ['rcpt@dest.example'],
            message: message({}),
          });
          // the same line from both MTAs (Sendmail puts the address before 550 texts, not 554)
          assert.deepEqual(r.mail.raw, ['554 5.7.1 Client host [127.0.0.1] blocked by local policy']);
          // and every further MAIL of the session
          const again = await transaction(client, {
            from: 'other@pass.lab.example',
            to: ['rcpt@dest.example'],
            message: message({}),
          });
          assert.equal(again.mail.code, 554);
        } finally {
          await client.quit();
        }
        const [c] = await finished(1);
        assert.equal(steps(c!).filter((k) => k === 'HELO').length, 1);
        // CONNECT and HELO unanswered; the refusal is the answer to MAIL
        assert.deepEqual(kinds(c!.responses).slice(0, 2), ['OPTNEG', 'REPLYCODE']);
      }),
    );
  }

  test(
    'postfix, DKIM and ARC off: no body and no end of headers are sent; the header fields still are',
    withLogs('postfix', async () => {
      await use(labConfig((c) => Object.assign(c, { dkim: { enabled: false }, arc: { enabled: false } })));
      const raw = message({
        subject: 'no body',
        from: 'pass@pass.lab.example',
        headers: ['X-Lab-Case: nobody', 'Authentication-Results: mx.lab.example; spf=pass (forged)'],
      });
      await accepted('postfix', raw);
      const [c] = await finished(1);
      const flags = optneg(c!).protocol;
      assert.ok(has(flags, SMFIP.NOBODY) && has(flags, SMFIP.NOEOH));
      const sent = steps(c!);
      assert.ok(!sent.includes('BODY') && !sent.includes('EOH'), sent.join(' '));
      assert.ok(sent.includes('HEADER'));
      assert.deepEqual(c!.responseBursts.map(kinds), [
        ['OPTNEG'],
        ['CONTINUE'],
        ['CHGHEADER', 'INSHEADER', 'INSHEADER', 'ACCEPT'],
      ]);
      const got = await sink.find('X-Lab-Case: nobody');
      const ours = got.headers.filter(([n]) => n === 'Authentication-Results');
      assert.equal(ours.length, 1, 'the forged Authentication-Results is gone');
      assert.doesNotMatch(ours[0]![1], /dkim=/);
    }),
  );

  test(
    'postfix, per-recipient thresholds: RCPT is answered, one recipient refused, the other delivered',
    withLogs('postfix', async () => {
      await use(
        labConfig((c) => {
          c.ratings = {
            ...(c.ratings as object),
            recipients: [{ match: ['strict@example.org'], accept: null, reject: { max: 9 } }],
          };
        }),
      );
      const client = await connect('postfix');
      try {
        await client.xclient({ ADDR: '192.0.2.1', NAME: 'mx.example.com' });
        // the identity (from HELO) is example.com, which the seed's registry rates
        await client.ehlo('example.com');
        const r = await transaction(client, {
          from: 'a@example.com',
          to: ['strict@example.org', 'normal@example.org'],
          message: message({ headers: ['X-Lab-Case: per-recipient'] }),
        });
        assert.deepEqual(r.rcpt[0]!.raw, [
          "550 5.7.1 Recipient won't accept mail from 'example.com' based on its current reputation",
        ]);
        assert.equal(r.rcpt[1]!.code, 250);
        assert.equal(r.final.code, 250, r.final.raw.join('\n'));
      } finally {
        await client.quit();
      }
      const got = await sink.find('X-Lab-Case: per-recipient');
      assert.deepEqual(got.rcptTo, ['normal@example.org']);
      // XCLIENT: Postfix opened a second milter connection for 192.0.2.1
      const conns = await finished(2);
      const c = conns.find((x) => x.commands.some((k) => k.kind === 'CONNECT' && k.address === '192.0.2.1'))!;
      assert.ok(!has(optneg(c).protocol, SMFIP.NR_RCPT));
      assert.deepEqual(c.responseBursts.map(kinds), [
        ['OPTNEG'],
        ['CONTINUE'],
        ['REPLYCODE'],
        ['CONTINUE'],
        ['INSHEADER', 'INSHEADER', 'ACCEPT'],
      ]);
    }),
  );

  test(
    'postfix, a reload between connections: the next connection negotiates for the new policy',
    withLogs('postfix', async () => {
      const config = labConfig();
      await use(config);
      const send = async (subject: string) => {
        await accepted('postfix', await signed(subject));
        return sink.find(`X-Lab-Case: ${subject}`);
      };
      await send('before reload');
      writeFileSync(
        config,
        stringify({
          ...(parse(readFileSync(config, 'utf8')) as object),
          dkim: { enabled: false },
          arc: { enabled: false },
        }),
      );
      milter!.child.process.kill('SIGHUP');
      await waitUntil(
        () => /policy reloaded/.test(milter!.output()),
        10_000,
        () => 'no "policy reloaded" in the log',
      );
      const after = await send('after reload');
      const [first, second] = await finished(2);
      assert.ok(steps(first!).includes('BODY'));
      assert.ok(has(optneg(second!).protocol, SMFIP.NOBODY));
      assert.ok(!steps(second!).includes('BODY'));
      const ar = after.headers.find(([n]) => n === 'Authentication-Results')![1];
      assert.doesNotMatch(ar, /dkim=/, 'DKIM off after the reload');
    }),
  );
});
