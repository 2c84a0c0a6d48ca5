/**
 * A full end-of-message pass — SPF (MAIL FROM), DKIM, DMARC and ARC on a ~10 KB message signed
 * with RSA-2048 and carrying one ARC set — through our engine session (connect, HELO, MAIL, RCPT,
 * headers, body, end of message, policy and headers included) against mailauth 7.1.0's
 * authenticate() (SPF, DKIM, DMARC, ARC; BIMI off), same in-memory DNS, same run.
 *
 *   node bench/eom.ts [--n 2000]
 */
import { generateKeyPairSync } from 'node:crypto';
import { authenticate } from 'mailauth';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { Engine, splitMessage, staticPolicy } from '../src/engine/engine.ts';
import { defaultConfig } from '../src/policy/config.ts';
import { addArcSet } from '../test/checks/arc/seal.ts';
import { rsaKey } from '../test/checks/dkim/sign.ts';
import { MemoryResolver } from '../test/support/zone.ts';
import { numberArg } from './support/args.ts';
import { measure } from './support/dns-process.ts';
import { mailauthResolver } from './support/mailauth-resolver.ts';

const N = Math.floor(numberArg('n', 2000));
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const arcKey = rsaKey();
const line = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n';
const body = line.repeat(Math.ceil(10_000 / line.length));
const unsigned = `From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: benchmark\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bench@example.com>\r\n\r\n${body}`;
const signedDkim = (await dkimSign(Buffer.from(unsigned), {
  signatureData: [{ signingDomain: 'example.com', selector: 'sel', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }],
} as never)) as { signatures: string };
const message = addArcSet(signedDkim.signatures + unsigned, {
  key: arcKey,
  domain: 'forwarder.example',
  selector: 'arc',
  authResults: 'mx.forwarder.example; dkim=pass header.d=example.com',
});

const resolver = new MemoryResolver({
  'example.com': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
  'sel._domainkey.example.com': [{ TXT: `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}` }],
  'arc._domainkey.forwarder.example': [{ TXT: arcKey.record }],
  '_dmarc.example.com': [{ TXT: 'v=DMARC1; p=reject' }],
  'mx.example.com': [{ A: '192.0.2.1' }],
  '1.2.0.192.in-addr.arpa': [{ PTR: 'mx.example.com' }],
});
const config = defaultConfig();
config.authservId = 'mx.receiver.example';
const engine = new Engine({ resolver, policy: staticPolicy(config, resolver) });
const { headers, body: messageBody } = splitMessage(message);
const raw = Buffer.from(message);

const ours = async () => {
  const r = await engine.checkID({ ip: '192.0.2.1', helo: 'mx.example.com', mailFrom: 'alice@example.com', rcpt: ['bob@example.org'], headers, body: messageBody });
  const f = r.session.facts;
  if (f.dkim?.[0]?.result !== 'pass' || f.dmarc?.result !== 'pass' || f.arc?.cv !== 'pass') throw new Error(`ours: ${JSON.stringify({ dkim: f.dkim?.[0]?.result, dmarc: f.dmarc?.result, arc: f.arc?.cv })}`);
};
const maResolver = mailauthResolver(resolver);
const peer = async () => {
  const r = (await authenticate(raw, { ip: '192.0.2.1', helo: 'mx.example.com', sender: 'alice@example.com', mta: 'mx.receiver.example', resolver: maResolver, disableBimi: true } as never)) as {
    dkim: { results: Array<{ status: { result: string } }> };
    dmarc: { status: { result: string } };
    arc: { status: { result: string } };
  };
  if (r.dkim.results[0]?.status.result !== 'pass' || r.dmarc.status.result !== 'pass' || r.arc.status.result !== 'pass') throw new Error('mailauth did not pass');
};
await ours();
await peer();
const o1 = await measure(N, 1, ours);
const p1 = await measure(N, 1, peer);
const o32 = await measure(N, 32, ours);
const p32 = await measure(N, 32, peer);
process.stdout.write(
  `${JSON.stringify(
    {
      bench: 'eom',
      node: process.version,
      messageBytes: raw.length,
      n: N,
      ours_sequential: o1,
      mailauth_sequential: p1,
      ours_32_in_flight: o32,
      mailauth_32_in_flight: p32,
      ratio_sequential: +(o1.perSecond / p1.perSecond).toFixed(2),
      ratio_32_in_flight: +(o32.perSecond / p32.perSecond).toFixed(2),
    },
    null,
    2,
  )}\n`,
);
