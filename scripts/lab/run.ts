/**
 * The real-MTA lab by hand (docs/lab.md): starts the lab DNS server (seed + lab zones), checkid's
 * milter, a recording sink, and a private Postfix and/or Sendmail pointed at both; prints where
 * everything listens, shows each message the sink receives (envelope and top header lines), and
 * stops it all on Ctrl-C (or after --minutes). Needs root and `bash scripts/lab/install.sh`.
 *
 *   node scripts/lab/run.ts [--mta postfix|sendmail|both] [--no-milter] [--config FILE] [--minutes 30]
 *
 * Then, e.g.: swaks --server 127.0.0.1:PORT --ehlo client.lab.example --from a@pass.lab.example --to r@dest.example
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { startDnsServer } from '../../test/support/dns-server.ts';
import { FIXTURES, seedZone } from '../../test/support/fixtures.ts';
import { type RunningMilter, startCheckidMilter } from '../../test/support/lab/checkid.ts';
import { labMissing } from '../../test/support/lab/lab.ts';
import type { RunningMta } from '../../test/support/lab/mta.ts';
import { startPostfix } from '../../test/support/lab/postfix.ts';
import { startSendmail } from '../../test/support/lab/sendmail.ts';
import { startSink } from '../../test/support/lab/sink.ts';
import type { ZoneData } from '../../test/support/zone.ts';

const { values } = parseArgs({
  options: {
    mta: { type: 'string', default: 'both' },
    'no-milter': { type: 'boolean', default: false },
    config: { type: 'string', default: join(FIXTURES, 'lab.yaml') },
    minutes: { type: 'string', default: '30' },
  },
});
const which =
  values.mta === 'both'
    ? (['postfix', 'sendmail'] as const)
    : ([values.mta] as Array<'postfix' | 'sendmail'>);
for (const mta of which) {
  if (mta !== 'postfix' && mta !== 'sendmail')
    throw new Error(`--mta ${mta}: expected postfix, sendmail or both`);
  const missing = labMissing(mta);
  if (missing) {
    process.stderr.write(`lab: ${mta}: ${missing}\n`);
    process.exit(1);
  }
}

const zone = { ...seedZone(), ...(parse(readFileSync(join(FIXTURES, 'lab-zone.yaml'), 'utf8')) as ZoneData) };
const dns = await startDnsServer({ zone });
let milter: RunningMilter | null = null;
const mtas: RunningMta[] = [];
const sink = await startSink();
let shown = 0;
const show = setInterval(() => {
  for (; shown < sink.messages.length; shown++) {
    const m = sink.messages[shown]!;
    process.stdout.write(
      `\n== sink: message ${shown + 1} from <${m.mailFrom}> to ${m.rcptTo.map((r) => `<${r}>`).join(' ')}\n${m.headerLines.slice(0, 12).join('\n')}\n`,
    );
  }
}, 250);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  clearInterval(show);
  for (const m of mtas) await m.stop();
  await milter?.stop();
  await sink.close();
  await dns.close();
  process.stdout.write('\nlab stopped\n');
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

try {
  if (!values['no-milter'])
    milter = await startCheckidMilter({ config: values.config, resolver: dns.address });
  for (const mta of which) {
    const start = mta === 'postfix' ? startPostfix : startSendmail;
    mtas.push(await start({ sinkPort: sink.port, ...(milter ? { milter: milter.address } : {}) }));
  }
} catch (err) {
  process.stderr.write(`lab: ${(err as Error).message}\n`);
  await stop();
}
process.stdout.write(
  `${JSON.stringify(
    {
      dns: dns.address,
      milter: milter?.address ?? null,
      config: milter ? values.config : null,
      sink: `127.0.0.1:${sink.port}`,
      mtas: Object.fromEntries(mtas.map((m) => [m.name, { smtp: `127.0.0.1:${m.port}`, dir: m.dir }])),
    },
    null,
    2,
  )}\nCtrl-C stops everything.\n`,
);
setTimeout(stop, Number(values.minutes) * 60_000);
