/**
 * The DMARC expectations of the authentication_milter end-to-end cases
 * (../shared/testdata/authmilter-e2e), run at the check level: for each message of each case,
 * the From field(s) of the source message, the SPF MAIL FROM result and the DKIM results the
 * expected Authentication-Results header shows, and the suite's BIND zone file (through
 * test/support/bind-zone.ts) go into checkDmarc; its dmarc= result(s) are compared with the
 * expected ones: the result, header.from, the published policy (our `policy`) and the evaluated
 * disposition before local overrides (our `disposition`). A case rejected by the milter
 * ("550 5.7.0 DMARC policy violation") expects fail with disposition reject; its SPF result is
 * computed by our own SPF check, as the rejection leaves no header to read it from.
 *
 * Messages without a dmarc= result are not compared: upstream skips DMARC for local and trusted
 * clients, hides "none" results under hide_none, and runs no handler in the timeout and dry-run
 * configurations. One expected file (dmarc_reject_hard.smtp.eml) is not in the data set.
 * Local overrides (policy.override-reason=local_policy / trusted_forwarder) are the policy's
 * business, not the check's, and are not compared.
 *
 * The cases, their messages, the expected outputs (upstream's own Authentication-Results, parsed)
 * and upstream's ip_map come from test/support/authmilter-e2e.ts, as for the adapter-level suite.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  checkDmarc,
  type DmarcInput,
  type DmarcResult,
  fromFieldValues,
} from '../../../src/checks/dmarc/index.ts';
import { checkMailFrom } from '../../../src/checks/spf/index.ts';
import {
  caseMessages,
  E2E_DIR,
  expectedMessages,
  headerFields,
  loadCases,
  loadZone,
  mappedClient,
  readData,
  type ResInfo,
  upstreamSettings,
} from '../../support/authmilter-e2e.ts';
import { MemoryResolver } from '../../support/zone.ts';

function domainOf(address: string): string {
  const a = address.trim().replace(/^<|>.*$/g, '');
  return a.slice(a.lastIndexOf('@') + 1).trim();
}

interface Comparison {
  label: string;
  expected: ResInfo[] | 'rejected';
  got: DmarcResult;
}

const zone = loadZone();
const cases = loadCases();

async function evaluate(): Promise<{
  compared: Comparison[];
  skipped: Record<string, number>;
  messages: number;
}> {
  const compared: Comparison[] = [];
  const skipped: Record<string, number> = {};
  let total = 0;
  const skip = (why: string) => {
    skipped[why] = (skipped[why] ?? 0) + 1;
  };
  for (const c of cases) {
    const msgs = caseMessages(c);
    total += msgs.length;
    if (!existsSync(new URL(`expected/${c.expected}`, E2E_DIR))) {
      for (const _ of msgs) skip('expected file not in the data set');
      continue;
    }
    // the first Authentication-Results of each message (upstream's own), or upstream's refusal
    const expected = expectedMessages(c);
    for (const m of msgs) {
      const label = `${c.mode} ${c.desc}${msgs.length > 1 ? ` #${m.index + 1}` : ''} (${c.expected})`;
      const want = expected[m.index];
      if (want === undefined) {
        skip('message not in the expected transcript');
        continue;
      }
      const rejected = want.rejected?.startsWith('550') ?? false;
      const infos = want.authResults?.results ?? [];
      const dmarcs = infos.filter((x) => x.method === 'dmarc');
      if (!rejected && dmarcs.length === 0) {
        skip('no dmarc= result expected (local/trusted client, hide_none, timeout or dry run)');
        continue;
      }
      const headers = headerFields(readData(`source/${m.source}`));
      const resolver = new MemoryResolver(zone.data);
      let spf: DmarcInput['spf'];
      const spfInfo = infos.find((x) => x.method === 'spf');
      if (spfInfo) {
        const mailfrom = spfInfo.props['smtp.mailfrom'] ?? '';
        spf = {
          result: spfInfo.result,
          domain: mailfrom === '' ? m.helo : domainOf(mailfrom),
          identity: 'mailfrom',
        };
      } else {
        const ip = mappedClient(upstreamSettings(c.config), m.ip, m.helo).ip;
        spf = await checkMailFrom({ ip, mailFrom: m.mailFrom, helo: m.helo }, { resolver });
      }
      let dkim: DmarcInput['dkim'];
      if (want.authResults) {
        dkim = infos
          .filter((x) => x.method === 'dkim' && x.props['header.d'])
          .map((x) => ({ result: x.result, domain: x.props['header.d']! }));
      } else if (!headers.some((f) => f.name.trim().toLowerCase() === 'dkim-signature')) {
        dkim = [];
      } else {
        skip('DKIM results unknown');
        continue;
      }
      const envelope = m.mailFrom.includes(',') ? undefined : { mailFrom: m.mailFrom, helo: m.helo };
      const from = fromFieldValues(headers.map((f): [string, string] => [f.name, f.value]));
      const got = await checkDmarc({ from, spf, dkim, envelope }, { resolver });
      compared.push({ label, expected: rejected ? 'rejected' : dmarcs, got });
    }
  }
  return { compared, skipped, messages: total };
}

describe('authentication_milter end-to-end cases: DMARC at the check level', () => {
  it('reads the zone file', () => {
    assert.equal(zone.records, 69);
    assert.equal(zone.errors.length, 5);
    assert.deepEqual(zone.data['_dmarc.goestheweasel.com'], [
      { TXT: ['v=DMARC1; p=reject; rua=mailto:dmarc.reports@ops.twofiftyeight.ltd.uk; rf=afrf; pct=100;'] },
    ]);
    assert.equal(zone.data['_dmarc.example.com'], undefined, 'declared NXDOMAIN');
    assert.equal(cases.length, 70);
  });

  it('every comparable message gets the expected dmarc= result(s)', async (t) => {
    const { compared, skipped, messages: total } = await evaluate();
    let entries = 0;
    for (const c of compared) {
      const ours = c.got.perDomain ?? [c.got];
      if (c.expected === 'rejected') {
        assert.equal(c.got.result, 'fail', c.label);
        assert.equal(c.got.disposition, 'reject', c.label);
        entries++;
        continue;
      }
      assert.equal(ours.length, c.expected.length, `${c.label}: number of dmarc= results`);
      c.expected.forEach((want, i) => {
        const from = want.props['header.from']?.toLowerCase();
        const got = from ? ours.find((o) => o.fromDomain === from) : ours[i];
        assert.ok(got, `${c.label}: no result for ${from}`);
        assert.equal(got.result, want.result, `${c.label} ${from}: ${got.reason}`);
        const published = want.props['policy.published-domain-policy'];
        if (published) assert.equal(got.policy, published, `${c.label} ${from}: policy`);
        const evaluated = want.props['policy.evaluated-disposition'];
        if (evaluated) assert.equal(got.disposition, evaluated, `${c.label} ${from}: disposition`);
        entries++;
      });
    }
    if (process.env.DMARC_E2E_VERBOSE)
      for (const c of compared)
        t.diagnostic(
          `${c.label}: ${(c.got.perDomain ?? [c.got]).map((o) => `${o.result}/${o.fromDomain}/${o.policy}/${o.disposition}`).join(' ')}`,
        );
    t.diagnostic(
      `${compared.length} of ${total} messages compared (${entries} dmarc= results, all equal); skipped: ${JSON.stringify(skipped)}`,
    );
    assert.equal(total, 77);
    assert.equal(compared.length, 61);
    assert.equal(entries, 65);
  });
});
