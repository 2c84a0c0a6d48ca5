/**
 * The Public Suffix List test vectors (../shared/testdata/dmarc-orgdomain-psl/tests.txt) run
 * against the RFC 9989 tree walk. RFC 7489 §3.2 took the Organizational Domain from the PSL
 * (public suffix + one label); RFC 9989 finds it in DNS records instead. To make the walk answer
 * the same question, each zone below publishes what a PSL entry means in DMARCbis terms:
 *
 *   PSO zone:    the public suffix of every name on a vector's path publishes
 *                "v=DMARC1; p=none; psd=y" (§5.2: a PSO's record MUST have psd=y), so the
 *                Organizational Domain is the name one label below it (§4.10.2 step 2) = the
 *                registrable domain;
 *   owner zone:  the registrable domain and every name below it on the path publish
 *                "v=DMARC1; p=none" and no suffix does, so the record with the fewest labels
 *                (§4.10.2 step 3) is the registrable domain.
 *
 * Which public suffixes exist comes from the list itself (public_suffix_list.dat, same snapshot),
 * read with the PSL algorithm (wildcards, exceptions, the implicit "*" rule) written here.
 *
 * Vectors that do not apply: an input that is itself a public suffix. The PSL has no registrable
 * domain for it (null); under RFC 9989 a PSD whose own name is the Author Domain is its own
 * Organizational Domain (the walk stops at its psd=y record, which step 2 skips because it is
 * the start, so step 3 selects it). Those are checked to give that DMARCbis answer instead.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { domainToASCII } from 'node:url';
import { DmarcLookup, normalizeAuthorDomain, organizationalDomain } from '../../../src/checks/dmarc/index.ts';
import { MemoryResolver, type ZoneData } from '../../support/zone.ts';

const DIR = new URL('../../../../shared/testdata/dmarc-orgdomain-psl/', import.meta.url);

function ascii(name: string): string {
  return name
    .split('.')
    .map((label) => (label === '*' ? label : domainToASCII(label) || label.toLowerCase()))
    .join('.');
}

/** The PSL algorithm (publicsuffix.org/list/): the public suffix of an A-label domain. */
class Psl {
  private readonly rules = new Set<string>();
  private readonly exceptions = new Set<string>();

  constructor(text: string) {
    for (const line of text.split('\n')) {
      const rule = line.trim().split(/\s/)[0]!;
      if (rule === '' || rule.startsWith('//')) continue;
      if (rule.startsWith('!')) this.exceptions.add(ascii(rule.slice(1)));
      else this.rules.add(ascii(rule));
    }
  }

  publicSuffix(domain: string): string {
    const labels = domain.split('.');
    let longest = 1; // the implicit "*" rule
    for (let n = 1; n <= labels.length; n++) {
      const tail = labels.slice(labels.length - n);
      const name = tail.join('.');
      if (this.exceptions.has(name)) return labels.slice(labels.length - n + 1).join('.');
      const wild = ['*', ...tail.slice(1)].join('.');
      if (this.rules.has(name) || this.rules.has(wild)) longest = n;
    }
    return labels.slice(labels.length - longest).join('.');
  }

  isPublicSuffix(domain: string): boolean {
    return this.publicSuffix(domain) === domain;
  }
}

interface Vector {
  input: string;
  expected: string | null;
}

function vectors(): Vector[] {
  const out: Vector[] = [];
  for (const line of readFileSync(new URL('tests.txt', DIR), 'utf8').split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('//')) continue;
    const [input, expected] = t.split(/\s+/);
    out.push({ input: input!, expected: expected === 'null' ? null : expected! });
  }
  return out;
}

function ancestorsOrSelf(domain: string): string[] {
  const labels = domain.split('.');
  return labels.map((_, i) => labels.slice(i).join('.'));
}

const psl = new Psl(readFileSync(new URL('public_suffix_list.dat', DIR), 'utf8'));
const all = vectors();
const usable = all.flatMap((v) => {
  const domain = v.input === 'null' ? null : normalizeAuthorDomain(v.input);
  return domain === null ? [] : [{ ...v, domain }];
});

function labelCount(name: string): number {
  return name.split('.').length;
}

function zoneFor(kind: 'pso' | 'owner'): ZoneData {
  const data: ZoneData = {};
  const suffixes = new Set<string>();
  for (const v of usable) for (const name of ancestorsOrSelf(v.domain)) suffixes.add(psl.publicSuffix(name));
  if (kind === 'pso') {
    // the public suffix of every name on every path (an exception rule such as !city.kobe.jp
    // makes kobe.jp the suffix of city.kobe.jp although kobe.jp alone is registrable)
    for (const suffix of suffixes) data[`_dmarc.${suffix}`] = [{ TXT: 'v=DMARC1; p=none; psd=y' }];
    return data;
  }
  for (const v of usable) {
    const suffix = psl.publicSuffix(v.domain);
    for (const name of ancestorsOrSelf(v.domain)) {
      if (labelCount(name) <= labelCount(suffix)) continue;
      assert.ok(!suffixes.has(name), `${name} is both registrable and a suffix`);
      data[`_dmarc.${name}`] = [{ TXT: 'v=DMARC1; p=none' }];
    }
  }
  return data;
}

async function orgDomain(zone: ZoneData, domain: string): Promise<string> {
  const r = await organizationalDomain(domain, new DmarcLookup(new MemoryResolver(zone)));
  assert.ok(r.ok);
  return r.orgDomain;
}

describe('PSL org-domain vectors (RFC 7489) through the RFC 9989 tree walk', () => {
  it('reads the 78 active vectors, 26 of them null', () => {
    assert.equal(all.length, 78);
    assert.equal(all.filter((v) => v.expected === null).length, 26);
  });

  it('the PSL reader gives the expected registrable domains (checks the zone builder)', () => {
    for (const v of usable) {
      if (v.expected === null) continue;
      const suffix = psl.publicSuffix(v.domain);
      const registrable = v.domain
        .split('.')
        .slice(-(suffix.split('.').length + 1))
        .join('.');
      assert.equal(registrable, normalizeAuthorDomain(v.expected), v.input);
    }
  });

  it('invalid inputs (null, a leading dot) have no Author Domain at all, as the PSL has none', () => {
    const invalid = all.filter((v) => v.input === 'null' || normalizeAuthorDomain(v.input) === null);
    assert.equal(invalid.length, 5);
    for (const v of invalid) assert.equal(v.expected, null, v.input);
  });

  for (const kind of ['pso', 'owner'] as const) {
    it(`${kind} zone: every vector with a registrable domain matches`, async () => {
      const zone = zoneFor(kind);
      let matched = 0;
      for (const v of usable) {
        if (v.expected === null) continue;
        assert.equal(await orgDomain(zone, v.domain), normalizeAuthorDomain(v.expected), v.input);
        matched++;
      }
      assert.equal(matched, 52);
    });

    it(`${kind} zone: a public suffix as input is its own Organizational Domain (PSL: null; does not apply)`, async () => {
      const zone = zoneFor(kind);
      const suffixes = usable.filter((v) => v.expected === null);
      assert.equal(suffixes.length, 21);
      for (const v of suffixes) {
        assert.ok(psl.isPublicSuffix(v.domain), v.input);
        assert.equal(await orgDomain(zone, v.domain), v.domain, v.input);
      }
    });
  }

  it('without any record the walk cannot tell: the Organizational Domain is the domain itself', async () => {
    for (const v of usable) assert.equal(await orgDomain({}, v.domain), v.domain, v.input);
  });
});
