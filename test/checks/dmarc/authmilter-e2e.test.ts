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
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import {
  checkDmarc,
  type DmarcInput,
  type DmarcResult,
  fromFieldValues,
} from '../../../src/checks/dmarc/index.ts';
import { checkMailFrom } from '../../../src/checks/spf/index.ts';
import { parseBindZone } from '../../support/bind-zone.ts';
import { MemoryResolver } from '../../support/zone.ts';

const DIR = new URL('../../../../shared/testdata/authmilter-e2e/', import.meta.url);

interface Case {
  mode: 'milter' | 'smtp';
  desc: string;
  config: string;
  source: string | string[];
  expected: string;
  ip: string | string[];
  helo: string | string[];
  mail_from: string | string[];
  rcpt_to: string | string[];
}

interface Message {
  label: string;
  config: string;
  source: string;
  ip: string;
  helo: string;
  mailFrom: string;
}

interface ResInfo {
  method: string;
  result: string;
  props: Record<string, string>;
}

function read(path: string): string {
  return readFileSync(new URL(path, DIR), 'latin1');
}

/** (name, value) pairs of a message's header, unfolded; names as written (e.g. "From "). */
function headerFields(text: string): Array<[string, string]> {
  const lines = text.split(/\r?\n/);
  const fields: Array<[string, string]> = [];
  for (const line of lines) {
    if (line === '') break;
    if (/^[ \t]/.test(line) && fields.length > 0) {
      fields[fields.length - 1]![1] += `\r\n${line}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon > 0) fields.push([line.slice(0, colon), line.slice(colon + 1)]);
  }
  return fields;
}

/** The first Authentication-Results field of a text, unfolded. */
function firstAuthResults(text: string): string | null {
  const lines = text.split(/\r?\n/);
  const start = lines.findIndex((l) => /^Authentication-Results:/i.test(l));
  if (start < 0) return null;
  let value = lines[start]!.replace(/^Authentication-Results:/i, '');
  for (let i = start + 1; i < lines.length && /^[ \t]/.test(lines[i]!); i++) value += ` ${lines[i]!.trim()}`;
  return value;
}

function stripComments(s: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') {
      if (depth === 0) out += c + (s[i + 1] ?? '');
      i++;
    } else if (!quoted && c === '(') depth++;
    else if (!quoted && c === ')' && depth > 0) depth--;
    else if (depth === 0) {
      if (c === '"') quoted = !quoted;
      out += c;
    }
  }
  return out;
}

/** The resinfos of an Authentication-Results value (RFC 8601 §2.2), comments dropped. */
function resinfos(value: string): ResInfo[] {
  const parts = stripComments(value).split(';').slice(1);
  const out: ResInfo[] = [];
  for (const part of parts) {
    const m = /^\s*([a-z0-9-]+)\s*=\s*([a-z]+)/i.exec(part);
    if (!m) continue;
    const props: Record<string, string> = {};
    for (const p of part.slice(m[0].length).matchAll(/([a-z]+\.[a-z0-9-]+)=("(?:[^"\\]|\\.)*"|[^\s;]+)/gi)) {
      props[p[1]!.toLowerCase()] = p[2]!.replace(/^"|"$/g, '');
    }
    out.push({ method: m[1]!.toLowerCase(), result: m[2]!.toLowerCase(), props });
  }
  return out;
}

function list(v: string | string[]): string[] {
  return Array.isArray(v) ? v : [v];
}

function messages(c: Case): Message[] {
  const sources = list(c.source);
  return sources.map((source, i) => ({
    label: `${c.mode} ${c.desc}${sources.length > 1 ? ` #${i + 1}` : ''} (${c.expected})`,
    config: c.config,
    source,
    ip: list(c.ip)[i]!,
    helo: list(c.helo)[i]!,
    mailFrom: list(c.mail_from)[i]!,
  }));
}

/** The expected output for each message of a case: its first Authentication-Results, or a rejection. */
function expectedSegments(
  c: Case,
  count: number,
): Array<{ ar: string | null; rejected: boolean } | undefined> {
  const text = read(`expected/${c.expected}`);
  if (c.mode === 'milter') {
    return [{ ar: firstAuthResults(text), rejected: /^Message rejected with code : 550/m.test(text) }];
  }
  const segments = text.split(/^MAIL FROM:/m).slice(1);
  return Array.from({ length: count }, (_, i) =>
    segments[i] === undefined ? undefined : { ar: firstAuthResults(segments[i]!), rejected: false },
  );
}

/** A configuration's ip_map entries (the files are Perl-flavoured JSON: read just that part). */
function ipMap(name: string): Array<[string, string]> {
  const text = read(`config/${name}.json`);
  return [...text.matchAll(/"([\d./]+)"\s*:\s*\{\s*"ip"\s*:\s*"([\d.]+)"/g)].map((m) => [m[1]!, m[2]!]);
}

/** The client IP after the configuration's ip_map (exact addresses and /24 blocks). */
function mappedIp(m: Message): string {
  for (const [key, to] of ipMap(m.config)) {
    if (key === m.ip) return to;
    if (key.endsWith('/24') && m.ip.split('.').slice(0, 3).join('.') === key.split('.').slice(0, 3).join('.'))
      return to;
  }
  return m.ip;
}

function domainOf(address: string): string {
  const a = address.trim().replace(/^<|>.*$/g, '');
  return a.slice(a.lastIndexOf('@') + 1).trim();
}

interface Comparison {
  label: string;
  expected: ResInfo[] | 'rejected';
  got: DmarcResult;
}

const zone = parseBindZone(read('zonefile'));
const cases = (parse(read('cases.yml')) as { cases: Case[] }).cases;

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
    const msgs = messages(c);
    total += msgs.length;
    if (!existsSync(new URL(`expected/${c.expected}`, DIR))) {
      for (const _ of msgs) skip('expected file not in the data set');
      continue;
    }
    const segments = expectedSegments(c, msgs.length);
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i]!;
      const seg = segments[i];
      if (seg === undefined) {
        skip('message not in the expected transcript');
        continue;
      }
      const infos = seg.ar ? resinfos(seg.ar) : [];
      const dmarcs = infos.filter((x) => x.method === 'dmarc');
      if (!seg.rejected && dmarcs.length === 0) {
        skip('no dmarc= result expected (local/trusted client, hide_none, timeout or dry run)');
        continue;
      }
      const sourceText = read(`source/${m.source}`);
      const headers = headerFields(sourceText);
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
        spf = await checkMailFrom({ ip: mappedIp(m), mailFrom: m.mailFrom, helo: m.helo }, { resolver });
      }
      let dkim: DmarcInput['dkim'];
      if (seg.ar) {
        dkim = infos
          .filter((x) => x.method === 'dkim' && x.props['header.d'])
          .map((x) => ({ result: x.result, domain: x.props['header.d']! }));
      } else if (!headers.some(([name]) => name.trim().toLowerCase() === 'dkim-signature')) {
        dkim = [];
      } else {
        skip('DKIM results unknown');
        continue;
      }
      const envelope = m.mailFrom.includes(',') ? undefined : { mailFrom: m.mailFrom, helo: m.helo };
      const got = await checkDmarc({ from: fromFieldValues(headers), spf, dkim, envelope }, { resolver });
      compared.push({ label: m.label, expected: seg.rejected ? 'rejected' : dmarcs, got });
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
