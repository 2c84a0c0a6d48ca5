/**
 * checkID verdicts per second with a warm cache, against the seed zone served by a local DNS
 * server in a separate process, compared in the same run with mailauth's SPF evaluation over
 * the same cached resolver (the nearest peer: one SPF-authenticated sender).
 *
 *   node bench/checkid.ts [--n 20000]
 *
 * Prints one JSON object. The goal (issue 2) is ≥ 20k verdicts/s on one core.
 */
import { spf as mailauthSpf } from 'mailauth/lib/spf/index.js';
import { createResolver } from '../src/dns/config.ts';
import { Engine, staticPolicy } from '../src/engine/engine.ts';
import { loadConfigFile } from '../src/policy/config.ts';
import { numberArg } from './support/args.ts';
import { measure, startDnsServerProcess } from './support/dns-process.ts';
import { mailauthResolver } from './support/mailauth-resolver.ts';

const N = numberArg('n', 20_000);
const fixtures = new URL('../test/fixtures/', import.meta.url).pathname;

const server = await startDnsServerProcess(`${fixtures}seed-zone.yaml`);
try {
  const resolver = createResolver({ servers: [server.address] });
  const config = loadConfigFile(`${fixtures}seed-authent.yaml`);
  const engine = new Engine({ resolver, policy: staticPolicy(config, resolver) });
  const inputs = [
    { ip: '192.0.2.1', id: 'example.com' },
    { ip: '192.0.2.1', id: 'example.net' },
    { ip: '192.0.2.1', id: 'example.com', helo: 'mx.example.com', mailFrom: 'a@example.com', rcpt: ['b@example.org'] },
  ];
  for (const i of inputs) await engine.checkID(i); // warm the cache
  const actions = new Set<string>();
  const checkSeq = await measure(N, 1, async (i) => actions.add((await engine.checkID(inputs[i % 2]!)).action));
  const check64 = await measure(N, 64, async (i) => engine.checkID(inputs[i % 2]!));
  const full = await measure(N, 64, async () => engine.checkID(inputs[2]!));

  const ma = mailauthResolver(resolver);
  const peerInputs = [
    { sender: 'postmaster@example.com', ip: '192.0.2.1', helo: 'example.com' },
    { sender: 'postmaster@example.net', ip: '192.0.2.1', helo: 'example.net' },
  ];
  for (const p of peerInputs) await mailauthSpf({ ...p, mta: 'mx.receiver.example', resolver: ma });
  const peerSeq = await measure(N, 1, async (i) => mailauthSpf({ ...peerInputs[i % 2]!, mta: 'mx.receiver.example', resolver: ma }));
  const peer64 = await measure(N, 64, async (i) => mailauthSpf({ ...peerInputs[i % 2]!, mta: 'mx.receiver.example', resolver: ma }));
  const stats = resolver.stats();
  await resolver.close();
  process.stdout.write(
    `${JSON.stringify(
      {
        bench: 'checkid',
        node: process.version,
        n: N,
        actions: [...actions].sort(),
        checkID_seed_sequential: checkSeq,
        checkID_seed_64_in_flight: check64,
        checkID_connect_helo_mail_rcpt_64_in_flight: full,
        peer_mailauth_spf_sequential: peerSeq,
        peer_mailauth_spf_64_in_flight: peer64,
        ratio_sequential: +(checkSeq.perSecond / peerSeq.perSecond).toFixed(2),
        ratio_64_in_flight: +(check64.perSecond / peer64.perSecond).toFixed(2),
        goal_verdicts_per_second: 20_000,
        cache: stats.cache,
      },
      null,
      2,
    )}\n`,
  );
} finally {
  server.stop();
}
