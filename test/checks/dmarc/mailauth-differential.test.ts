/**
 * Differential test against mailauth 7.1.0 (a test-only oracle; it follows the RFC 9989 tree
 * walk in strict mode): random zones over a small namespace (records with every tag combination,
 * psd=, several records at a name, SERVFAIL, existing, non-existent and failing names, a name deep enough
 * to make the walk skip labels), random Author Domains and random SPF/DKIM identifiers. Both
 * implementations read the same MemoryResolver; the dmarc= result, the policy domain and the
 * policy must agree.
 *
 * One documented disagreement: a record with no valid p= (or an invalid sp=/np=) and no valid
 * rua= gets "no DMARC processing" (RFC 9989 §4.10.1). mailauth reports none; we report
 * permerror, the result §9.2 describes for "the retrieval of an improperly formatted DMARC
 * Policy Record", so that the broken record is visible in Authentication-Results.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dmarc as mailauthDmarc } from 'mailauth/lib/dmarc/index.js';
import { mailauthResolver } from '../../../bench/support/mailauth-resolver.ts';
import { pick, prng } from '../../../fuzz/support/prng.ts';
import { checkDmarc, type DmarcPolicy } from '../../../src/checks/dmarc/index.ts';
import { MemoryResolver, type ZoneData } from '../../support/zone.ts';

const NAMES = [
  'com',
  'example.com',
  'mail.example.com',
  'a.mail.example.com',
  'b.a.mail.example.com',
  'news.example.com',
  'a.b.c.d.e.f.g.h.mail.example.com',
  'net',
  'example.net',
  'x.example.net',
  'example',
  'bank.example',
  'giant.bank.example',
  'www.giant.bank.example',
  'mega.bank.example',
  'mail.mega.bank.example',
];

function randomRecord(rng: () => number): string {
  const tags = ['v=DMARC1'];
  const p = pick(rng, ['none', 'quarantine', 'reject', 'reject', null, 'bogus']);
  if (p !== null) tags.push(`p=${p}`);
  if (rng() < 0.3) tags.push(`sp=${pick(rng, ['none', 'quarantine', 'reject', 'bad'])}`);
  if (rng() < 0.3) tags.push(`np=${pick(rng, ['none', 'quarantine', 'reject', 'bad'])}`);
  if (rng() < 0.3) tags.push('adkim=s');
  if (rng() < 0.3) tags.push('aspf=s');
  if (rng() < 0.4) tags.push(`psd=${pick(rng, ['y', 'n', 'u'])}`);
  if (rng() < 0.2) tags.push('t=y');
  if (rng() < 0.4) tags.push('rua=mailto:dmarc@example.org');
  return tags.join('; ');
}

function randomZone(rng: () => number): ZoneData {
  const data: ZoneData = {};
  for (const name of NAMES) {
    const r = rng();
    if (r < 0.35) data[`_dmarc.${name}`] = [{ TXT: randomRecord(rng) }];
    else if (r < 0.38) data[`_dmarc.${name}`] = [{ TXT: randomRecord(rng) }, { TXT: randomRecord(rng) }];
    else if (r < 0.41) data[`_dmarc.${name}`] = ['SERVFAIL'];
    else if (r < 0.45) data[`_dmarc.${name}`] = [{ TXT: 'v=spf1 -all' }];
    const e = rng();
    if (e < 0.6) data[name] = [{ A: '192.0.2.1' }];
    else if (e < 0.65) data[name] = ['SERVFAIL'];
  }
  return data;
}

function lower(p: DmarcPolicy): DmarcPolicy {
  return p === 'reject' ? 'quarantine' : 'none';
}

interface MailauthDmarc {
  status: { result: string };
  policy?: string;
  policyDomain?: string;
}

describe('DMARC: differential test against mailauth 7.1.0 (strict mode)', () => {
  it('agrees on 3000 random zones and messages', async (t) => {
    const rng = prng(Number(process.env.DMARC_DIFF_SEED ?? 20260101));
    const runs = Number(process.env.DMARC_DIFF_RUNS ?? 3000);
    const counts: Record<string, number> = {};
    let documented = 0;
    const disagreements: string[] = [];
    for (let k = 0; k < runs; k++) {
      const zone = randomZone(rng);
      const from = pick(rng, NAMES.slice(1));
      const spfDomain = rng() < 0.7 ? pick(rng, NAMES) : null;
      const dkimDomains = Array.from({ length: Math.floor(rng() * 3) }, () => pick(rng, NAMES));
      const ours = await checkDmarc(
        {
          from: [`x@${from}`],
          spf: spfDomain ? { result: 'pass', domain: spfDomain, identity: 'mailfrom' } : null,
          dkim: dkimDomains.map((domain) => ({ result: 'pass', domain })),
        },
        { resolver: new MemoryResolver(zone) },
      );
      const theirs = (await mailauthDmarc({
        headerFrom: `x@${from}`,
        spfDomains: spfDomain ? [spfDomain] : [],
        dkimDomains: dkimDomains.map((domain) => ({ domain })),
        resolver: mailauthResolver(new MemoryResolver(zone)) as never,
        strict: true,
      })) as MailauthDmarc | false;
      assert.ok(theirs, 'one Author Domain');
      counts[ours.result] = (counts[ours.result] ?? 0) + 1;
      const theirResult = theirs.status.result;
      const brokenRecord = ours.result === 'permerror' && ours.record !== null;
      if (brokenRecord) {
        documented++;
        if (theirResult !== 'none')
          disagreements.push(`${k} ${from}: ours permerror (broken record), theirs ${theirResult}`);
        continue;
      }
      if (ours.result !== theirResult) {
        disagreements.push(
          `${k} ${from} spf=${spfDomain} dkim=${dkimDomains}: ours ${ours.result} (${ours.reason}), theirs ${theirResult}`,
        );
        continue;
      }
      if (ours.result === 'pass' || ours.result === 'fail') {
        if (ours.policyDomain !== theirs.policyDomain) {
          disagreements.push(
            `${k} ${from}: policy domain ours ${ours.policyDomain}, theirs ${theirs.policyDomain}`,
          );
        }
        const effective = ours.record?.t ? lower(ours.policy) : ours.policy;
        // with np= and an unanswered existence query, a pass reports sp/p here and the weaker
        // of the two in mailauth (which one applies is unknown, and irrelevant to a pass)
        const unknown = ours.record?.np && ours.policyDomain !== from && ours.domainExists === undefined;
        if (effective !== theirs.policy && !unknown) {
          disagreements.push(
            `${k} ${from}: policy ours ${ours.appliedPolicy}=${ours.policy} t=${ours.record?.t}, theirs ${theirs.policy}`,
          );
        }
      }
    }
    t.diagnostic(
      `results ${JSON.stringify(counts)}; ${documented} broken-record cases (documented: ours permerror, mailauth none)`,
    );
    assert.deepEqual(disagreements.slice(0, 10), []);
    // every outcome is exercised
    for (const r of ['pass', 'fail', 'none', 'temperror', 'permerror'])
      assert.ok((counts[r] ?? 0) > 50, `${r}: ${counts[r]}`);
  });
});
