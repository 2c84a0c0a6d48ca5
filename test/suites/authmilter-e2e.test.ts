/**
 * The authentication_milter end-to-end cases (../shared/testdata/authmilter-e2e: 33 milter-mode
 * and 37 SMTP-proxy-mode cases) through our real adapters, compared with upstream's outputs
 * method by method (spf, dkim, dmarc), never byte for byte. One node:test case per (case, mode).
 *
 * - DNS: the suite's BIND zone file (test/support/bind-zone.ts) on the real test DNS server;
 *   the engine resolves through createResolver({ servers: [its address], cache: false }).
 * - Milter mode: startMilterServer on a TCP port, driven by test/support/milter-client.ts as
 *   Postfix drives a milter: CONNECT with the case's client address, HELO, MAIL, RCPT, every
 *   header field, the body, end of message. Our Authentication-Results is the INSHEADER the
 *   adapter sends; the header block as delivered comes from the client's deliver().
 * - Proxy mode: our SMTP front-end relaying to the test SMTP sink, each message sent by a real
 *   SMTP client from the case's own client address (test/support/authmilter-proxy.ts: a private
 *   network namespace with the addresses on its lo; without one, the engine session is opened
 *   for the case's address and the XFORWARD address is not compared). Our Authentication-Results
 *   is read from the message the sink received.
 * - Configurations: upstream's are mapped onto ours by checkidConfig() (authserv-id as in the
 *   expected output, no refusal on SPF as upstream never refuses on it, DMARC p=reject refused
 *   only under upstream's hard_reject). Upstream's ip_map is applied by the client.
 * - A message we refuse has no header: its results come from the end-of-message facts the
 *   policy hook recorded (the verdict still carries them), and the refusal is compared with
 *   upstream's where it refused too.
 * - Time: the DKIM signatures carry neither t= nor x=, so no clock is injected.
 *
 * Every compared value is equal to upstream's, or its difference is one of DIFFERENCES below,
 * each with its reason; a listed difference that no longer occurs fails the summary, so the list
 * stays true. AUTHMILTER_E2E_VERBOSE=1 prints every comparison; AUTHMILTER_E2E_NO_NETNS=1 runs
 * the proxy mode without a network namespace, as on a machine that cannot make one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startMilterServer } from '../../src/adapters/milter/server.ts';
import { SMFIP } from '../../src/adapters/milter/wire.ts';
import { createResolver, type ManagedResolver } from '../../src/dns/config.ts';
import {
  type AuthResults,
  authResultsFields,
  authservIdFor,
  type Check,
  caseMessages,
  checkidConfig,
  compareViews,
  type E2eCase,
  type E2eMessage,
  type EomSnapshot,
  envelopeAddress,
  type ExpectedMessage,
  expectedMessages,
  headerFields,
  loadCases,
  loadZone,
  localOrTrusted,
  mappedClient,
  type NotCompared,
  ourFactsView,
  ourHeaderView,
  parseAuthResults,
  recordingEngine,
  sourceMessage,
  splitHeaderBody,
  type UpstreamSettings,
  upstreamSettings,
  upstreamView,
} from '../support/authmilter-e2e.ts';
import { namespaceProbe, type ProxyAttempt, type ProxyCaseResult, proxyCases, runProxyCases, runProxyIsolated } from '../support/authmilter-proxy.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { deliver, MilterClient } from '../support/milter-client.ts';

const cases = loadCases();
const zone = loadZone();

/** What our adapter did with one message. */
interface Outcome {
  /** the MAIL FROM reply when the adapter refused it ("501 5.1.7 ..."), else null */
  mailRefused: string | null;
  delivered: boolean;
  /** our refusal at the end of the message ("550 5.7.1 text") */
  refusal: string | null;
  /** our Authentication-Results as delivered */
  ours: AuthResults | null;
  /** the authserv-ids of the other Authentication-Results fields in the delivered message */
  kept: string[];
  eom: EomSnapshot | null;
  /** proxy mode: XFORWARD as relayed, and whether the client really had the case's address */
  xforward?: { attrs: Record<string, string>; bound: boolean; mapped: boolean };
}

interface Evaluation {
  label: string;
  checks: Check[];
  notCompared: NotCompared[];
}

// ---------------------------------------------------------------------------------------------
// Known differences: each with its reason; matched on the case, the check and the values

interface Difference {
  id: string;
  reason: string;
  applies: (c: E2eCase, check: Check) => boolean;
}

/** A difference on the given expected files, for a check whose `what` matches, with these values. */
function on(files: string[], what: string | RegExp, expected: string, got: string | RegExp): Difference['applies'] {
  return (c, check) =>
    files.includes(c.expected) &&
    (typeof what === 'string' ? check.what === what : what.test(check.what)) &&
    check.expected === expected &&
    (typeof got === 'string' ? check.got === got : got.test(check.got));
}

const DIFFERENCES: Difference[] = [
  {
    id: 'null-sender-identity',
    reason:
      'with a null reverse-path SPF checks postmaster@<HELO> (RFC 7208 §2.4): we name that identity in smtp.mailfrom, upstream leaves smtp.mailfrom empty and names the HELO in smtp.helo; the SPF result is the same',
    applies: on(['google_apps_good_nofrom.eml', 'google_apps_good_nofrom.smtp.eml'], 'smtp.mailfrom', '', 'postmaster@marcbradshaw.net'),
  },
  {
    id: 'space-in-mail-from (milter)',
    reason:
      'upstream\'s client gave MAIL FROM <marc@ marcbradshaw.net>, which is no RFC 5321 §4.1.2 Path; upstream reports it with the space removed, our milter adapter takes the argument the MTA passed as it is and reports it so (quoted); SPF checked the same domain with the same result',
    applies: on(['google_apps_bad_space.eml'], 'smtp.mailfrom', 'marc@marcbradshaw.net', 'marc@ marcbradshaw.net'),
  },
  {
    id: 'space-in-mail-from (SMTP)',
    reason:
      'our front-end refuses MAIL FROM:<marc@ marcbradshaw.net> with 501 5.1.7 (white space inside a Path, RFC 5321 §4.1.2), upstream\'s proxy accepted it; the message was sent again with the address cleaned, and its results are compared',
    applies: (c, check) =>
      on(['google_apps_bad_space.smtp.eml'], 'action', 'delivered', 'refused at MAIL')(c, check) ||
      on(['google_apps_bad_space.smtp.eml'], 'MAIL FROM reply', '250', '501 5.1.7 Bad sender address syntax')(c, check),
  },
  {
    id: 'two-mailboxes-in-mail-from',
    reason:
      'upstream\'s client gave MAIL FROM <test@goestheweasel.com, test@marcbradshaw.net>, not one mailbox (RFC 5321 §4.1.2; an MTA refuses it, as our front-end does with 501 5.1.7): upstream checked no identity (none, smtp.mailfrom ""), our SPF took the domain after the last "@" (marcbradshaw.net, ~all: softfail); neither authenticates, so the DMARC results are the same',
    applies: (c, check) =>
      on(['dmarc_multi_2.eml'], 'result', 'none', 'softfail')(c, check) ||
      on(['dmarc_multi_2.eml'], 'smtp.mailfrom', '', 'test@goestheweasel.com, test@marcbradshaw.net')(c, check),
  },
  {
    id: 'received-authentication-results-removed',
    reason:
      'both remove the received fields that carry their own authserv-id (RFC 8601 §5); upstream\'s Sanitize handler also removes those of its hosts_to_remove list (example.com, or module, and their subdomains) and of its own host name (test.module, module); checkid removes exactly the ones with its authserv-id and has no setting for more',
    applies: (c, check) =>
      check.method === 'sanitize' &&
      check.what === 'received Authentication-Results kept (authserv-ids)' &&
      ['google_apps_good_sanitize.eml', 'google_apps_good_sanitize.smtp.eml', 'google_apps_good_sanitize_authserv_id.eml', 'google_apps_good_sanitize_authserv_id.smtp.eml'].includes(c.expected),
  },
  {
    id: 'dmarc-refusal-enhanced-code',
    reason:
      'both refuse with 550; we use 5.7.1 "delivery not authorized, message refused" (RFC 3463 §3.8, the code RFC 9989 §7.2\'s example reply uses), upstream 5.7.0 "other or undefined security status"',
    applies: on(['dmarc_reject_hard.eml'], 'enhanced status code', '5.7.0', '5.7.1'),
  },
  {
    id: 'dmarc-whitelist-by-client-address',
    reason:
      'upstream\'s dmarc_reject config exempts clients in 99.0.0.0/8 from the DMARC rejection (override trusted_forwarder) and delivers; checkid\'s policy has no client-address exemption for DMARC (dmarc.exempt names author domains, prescreen.allow would skip every check; a policy hook can do it), so the p=reject failure is refused: policy, not a method result (the facts are compared)',
    applies: on(['dmarc_reject_hard_whitelisted.eml', 'dmarc_reject_hard_whitelisted.smtp.eml'], 'action', 'delivered', 'refused'),
  },
  {
    id: 'dmarc-whitelist-by-dkim-signer',
    reason:
      'upstream\'s dmarc_reject_wl config exempts mail signed by marcbradshaw.net (dkim:marcbradshaw.net) from the DMARC rejection and delivers; checkid has no signer-based exemption (only ARC trusted sealers), so the p=reject failure for goestheweasel.com is refused: policy (the facts are compared)',
    applies: on(['dmarc_reject_wl.eml', 'dmarc_reject_wl.smtp.eml'], 'action', 'delivered', 'refused'),
  },
  {
    id: 'rsa-sha1',
    reason:
      'the signature is a=rsa-sha1: RFC 8301 §3.1 forbids verifiers to consider rsa-sha1 signatures valid, so ours is dkim=policy (RFC 8601 §2.7.1: the signature was not acceptable); upstream passes it; d=marcbradshaw.net does not align with the From domain goestheweasel.com, so DMARC fails for both',
    applies: on(['dmarc_reject_wl.eml', 'dmarc_reject_wl.smtp.eml'], 'dkim[marcbradshaw.net/tfe2] result', 'pass', 'policy'),
  },
  {
    id: 'text-line-over-998',
    reason:
      'the message has 8000-character lines: our front-end reads it to its end and refuses it (500 5.5.2, RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets with CRLF), upstream\'s proxy relays it; in milter mode the MTA owns that limit and the results are compared',
    applies: on(['longlines.smtp.eml'], 'action', 'delivered', 'refused'),
  },
];

const seenDifferences = new Map<string, number>();
const unexplained: string[] = [];
const totals = { cases: 0, skipped: 0, messagesNotInTranscript: 0, compared: 0, equal: 0, differing: 0, notCompared: 0, perMethod: new Map<string, { compared: number; equal: number }>() };
/** (case, mode) test names that had at least one difference */
const casesDiffering = new Set<string>();
const casesCompared = new Set<string>();

function record(c: E2eCase, ev: Evaluation, t: { diagnostic: (s: string) => void }): void {
  totals.cases++;
  casesCompared.add(`${c.mode} ${c.expected}`);
  if (ev.checks.some((x) => x.expected !== x.got)) casesDiffering.add(`${c.mode} ${c.expected}`);
  totals.notCompared += ev.notCompared.length;
  for (const n of ev.notCompared) if (process.env.AUTHMILTER_E2E_VERBOSE) t.diagnostic(`${ev.label}: ${n.method} not compared: ${n.why}`);
  for (const check of ev.checks) {
    totals.compared++;
    const m = totals.perMethod.get(check.method) ?? { compared: 0, equal: 0 };
    m.compared++;
    totals.perMethod.set(check.method, m);
    const line = `${ev.label}: ${check.method} ${check.what}: upstream ${JSON.stringify(check.expected)}, ours ${JSON.stringify(check.got)}`;
    if (check.expected === check.got) {
      totals.equal++;
      m.equal++;
      if (process.env.AUTHMILTER_E2E_VERBOSE) t.diagnostic(`${line} (equal)`);
      continue;
    }
    totals.differing++;
    const known = DIFFERENCES.find((d) => d.applies(c, check));
    if (known) {
      seenDifferences.set(known.id, (seenDifferences.get(known.id) ?? 0) + 1);
      t.diagnostic(`${line} — ${known.id}: ${known.reason}`);
    } else {
      unexplained.push(line);
      t.diagnostic(`${line} — UNEXPLAINED`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Evaluation of one message

function evaluate(c: E2eCase, m: E2eMessage, settings: UpstreamSettings, expected: ExpectedMessage, outcome: Outcome, label: string): Evaluation {
  const checks: Check[] = [];
  const notCompared: NotCompared[] = [];
  const ourAction = outcome.mailRefused ? 'refused at MAIL' : outcome.delivered ? 'delivered' : 'refused';
  checks.push({ method: 'reply', what: 'action', expected: expected.rejected ? 'refused' : 'delivered', got: ourAction });
  if (outcome.mailRefused) checks.push({ method: 'reply', what: 'MAIL FROM reply', expected: '250', got: outcome.mailRefused });
  if (outcome.xforward && expected.xforward) {
    // upstream forwarded the client before its ip_map, ours connected as the mapped one; without
    // a network namespace the client connected from 127.0.0.1, and XFORWARD ADDR says so
    if (!outcome.xforward.mapped) {
      if (outcome.xforward.bound) checks.push({ method: 'xforward', what: 'XFORWARD ADDR', expected: expected.xforward.ADDR ?? '', got: outcome.xforward.attrs.ADDR ?? '' });
      checks.push({ method: 'xforward', what: 'XFORWARD HELO', expected: expected.xforward.HELO ?? '', got: outcome.xforward.attrs.HELO ?? '' });
    }
  }

  if (expected.rejected) {
    const want = /^(\d{3}) (\d\.\d{1,3}\.\d{1,3})/.exec(expected.rejected);
    const got = outcome.refusal ? /^(\d{3}) (\d\.\d{1,3}\.\d{1,3})/.exec(outcome.refusal) : null;
    checks.push({ method: 'reply', what: 'reply code', expected: want?.[1] ?? '', got: got?.[1] ?? '(none)' });
    checks.push({ method: 'reply', what: 'enhanced status code', expected: want?.[2] ?? '', got: got?.[2] ?? '(none)' });
    // "DMARC policy violation": upstream's DMARC result was fail under a reject disposition
    const dmarc = outcome.eom?.dmarc[0];
    checks.push({ method: 'dmarc', what: 'result (implied by the refusal)', expected: 'fail', got: dmarc?.result ?? '(absent)' });
    checks.push({ method: 'dmarc', what: 'evaluated disposition (implied by the refusal)', expected: 'reject', got: dmarc?.disposition ?? '(absent)' });
    notCompared.push({ method: 'spf', why: "upstream's refusal leaves no header to read its SPF result from" });
    notCompared.push({ method: 'dkim', why: "upstream's refusal leaves no header to read its DKIM result from" });
    return { label, checks, notCompared };
  }
  if (!expected.authResults) {
    for (const method of ['spf', 'dkim', 'dmarc'] as const)
      notCompared.push({ method, why: "upstream's output carries no Authentication-Results (dry run / handlers timed out): nothing to compare" });
    return { label, checks, notCompared };
  }
  let ours = null;
  if (outcome.ours) ours = ourHeaderView(outcome.ours);
  else if (outcome.eom) ours = ourFactsView(outcome.eom);
  if (!ours) {
    for (const method of ['spf', 'dkim', 'dmarc'] as const) notCompared.push({ method, why: 'our adapter ended the transaction before the end of the message' });
    return { label, checks, notCompared };
  }
  const client = mappedClient(settings, m.ip, m.helo);
  const compared = compareViews(upstreamView(expected.authResults), ours, { hideNone: settings.hideNone, localOrTrusted: localOrTrusted(settings, client.ip) });
  checks.push(...compared.checks);
  notCompared.push(...compared.notCompared);

  // received Authentication-Results fields: which ones each of us left in place
  const source = splitHeaderBody(sourceMessage(m.source)).header;
  if (authResultsFields(source).length > 0 && outcome.delivered) {
    const own = authservIdFor(c).toLowerCase();
    checks.push({ method: 'sanitize', what: `received fields with our authserv-id ${own} left in place`, expected: '0', got: String(outcome.kept.filter((k) => k === own).length) });
    checks.push({ method: 'sanitize', what: 'received Authentication-Results kept (authserv-ids)', expected: [...expected.keptAuthservIds].sort().join(' '), got: [...outcome.kept].sort().join(' ') });
  }
  return { label, checks, notCompared };
}

// ---------------------------------------------------------------------------------------------
// Milter mode

let dns: DnsTestServer;
let resolver: ManagedResolver;

before(async () => {
  dns = await startDnsServer({ zone: zone.data });
  resolver = createResolver({ servers: [dns.address], cache: false });
});

after(async () => {
  await resolver?.close();
  await dns?.close();
});

async function viaMilter(c: E2eCase, m: E2eMessage, settings: UpstreamSettings): Promise<Outcome> {
  const authservId = authservIdFor(c);
  const { engine, taken } = recordingEngine(checkidConfig(settings, authservId), resolver);
  const server = await startMilterServer({ engine, listen: 'inet:127.0.0.1:0' });
  const mta = await MilterClient.connect(server.address);
  try {
    const negotiated = await mta.negotiate();
    const client = mappedClient(settings, m.ip, m.helo);
    await mta.connectEvent({ hostname: client.helo, family: 'inet', port: 40_000 + m.index, address: client.ip });
    await mta.helo(client.helo);
    const env = envelopeAddress(m.mailFrom);
    const mail = await mta.mail([`<${env.address}>`, ...env.params]);
    if (mail && mail.kind !== 'CONTINUE') {
      mta.abort();
      const text = mail.kind === 'REPLYCODE' ? mail.text : mail.kind;
      return { mailRefused: text, delivered: false, refusal: null, ours: null, kept: [], eom: null };
    }
    await mta.rcpt([`<${envelopeAddress(m.rcptTo).address}>`]);
    await mta.data();
    const { header, body } = splitHeaderBody(sourceMessage(m.source));
    const fields = headerFields(header);
    for (const f of fields) await mta.header(f.name, f.value);
    await mta.eoh();
    await mta.body(Buffer.from(body, 'latin1'));
    const eom = await mta.eom();
    const snap = taken().at(-1) ?? null;
    if (eom.final.kind !== 'ACCEPT' && eom.final.kind !== 'CONTINUE') {
      const text = eom.final.kind === 'REPLYCODE' ? eom.final.text : eom.final.kind;
      return { mailRefused: null, delivered: false, refusal: text, ours: null, kept: [], eom: snap };
    }
    const leadingSpace = (negotiated.protocol & SMFIP.HDR_LEADSPC) !== 0;
    const delivered = deliver(
      fields.map((f) => [f.name, f.value.replace(/^ /, '')]),
      eom.modifications,
      { leadingSpace },
    );
    const all = authResultsFields(`${delivered.join('\r\n')}\r\n`);
    const inserted = eom.modifications.find((x) => x.kind === 'INSHEADER' && x.name.toLowerCase() === 'authentication-results');
    const ours = inserted && inserted.kind === 'INSHEADER' ? parseAuthResults(Buffer.from(inserted.value).toString('latin1')) : null;
    // ours is the field we inserted; every other one (a forged copy left behind included) was kept
    const oursAt = all.findIndex((a) => ours !== null && a.authservId === ours.authservId);
    const kept = all.filter((_, i) => i !== oursAt).map((a) => a.authservId.toLowerCase());
    return { mailRefused: null, delivered: true, refusal: null, ours, kept, eom: snap };
  } finally {
    mta.quit();
    mta.close();
    await server.close();
  }
}

describe('authentication_milter end-to-end cases through our milter adapter', () => {
  for (const c of cases.filter((x) => x.mode === 'milter')) {
    it(`milter: ${c.desc} (${c.expected})`, async (t) => {
      const settings = upstreamSettings(c.config);
      const [m] = caseMessages(c);
      const [expected] = expectedMessages(c);
      assert.ok(m && expected, `${c.expected}: a message and its expected output`);
      const outcome = await viaMilter(c, m, settings);
      const ev = evaluate(c, m, settings, expected, outcome, `milter ${c.expected}`);
      record(c, ev, t);
      assert.ok(ev.checks.length > 0, 'something was compared');
      if (ev.checks.length === 1 && ev.notCompared.length === 3) t.diagnostic(`${c.expected}: only the action compared (${ev.notCompared[0]!.why})`);
      const bad = ev.checks.filter((x) => x.expected !== x.got && !DIFFERENCES.some((d) => d.applies(c, x)));
      assert.deepEqual(bad, [], `${c.expected}: differences without a known reason`);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// SMTP proxy mode

function proxyOutcome(attempt: ProxyAttempt, bound: boolean, mapped: boolean, authservId: string): Outcome {
  const refusedMail = attempt.mail.startsWith('250') ? null : attempt.mail;
  const delivered = attempt.relayed !== null;
  let ours: AuthResults | null = null;
  let kept: string[] = [];
  if (attempt.relayed) {
    const all = authResultsFields(attempt.relayed.header);
    const at = all.findIndex((a) => a.authservId.toLowerCase() === authservId.toLowerCase());
    ours = at >= 0 ? all[at]! : null;
    kept = all.filter((_, i) => i !== at).map((a) => a.authservId.toLowerCase());
  }
  return {
    mailRefused: refusedMail,
    delivered,
    refusal: !delivered && attempt.data && !attempt.data.startsWith('250') ? attempt.data : null,
    ours,
    kept,
    eom: attempt.eom,
    ...(attempt.relayed ? { xforward: { attrs: attempt.relayed.xforward, bound, mapped } } : {}),
  };
}

describe('authentication_milter end-to-end cases through our SMTP front-end', () => {
  let results = new Map<string, ProxyCaseResult>();
  let isolation = '';
  before(async () => {
    const probe: ReturnType<typeof namespaceProbe> = process.env.AUTHMILTER_E2E_NO_NETNS ? { ok: false, why: 'AUTHMILTER_E2E_NO_NETNS is set' } : namespaceProbe();
    let list: ProxyCaseResult[];
    if (probe.ok) {
      list = await runProxyIsolated();
      isolation = 'each client connected from its case address (private network namespace)';
    } else {
      list = await runProxyCases(proxyCases(), { bindClient: false });
      isolation = `no network namespace (${probe.why}): clients connected from 127.0.0.1 and the engine session was opened for the case address; XFORWARD ADDR not compared`;
    }
    results = new Map(list.map((r) => [r.expected, r]));
  });

  for (const c of cases.filter((x) => x.mode === 'smtp')) {
    it(`smtp: ${c.desc} (${c.expected})`, (t) => {
      t.diagnostic(isolation);
      const settings = upstreamSettings(c.config);
      const result = results.get(c.expected);
      assert.ok(result, `${c.expected}: run through the front-end`);
      const expected = expectedMessages(c);
      const messages = caseMessages(c);
      if (expected.every((e) => e === undefined)) {
        // still sent through the front-end above; there is nothing of upstream's to compare with
        assert.equal(result.messages.length, messages.length);
        t.skip(`expected/${c.expected} is not in the data set (upstream's t/data/example lacks it): nothing to compare with`);
        totals.skipped++;
        return;
      }
      let compared = 0;
      for (const m of messages) {
        const r = result.messages[m.index];
        const want = expected[m.index];
        assert.ok(r, `${c.expected} #${m.index + 1}: sent through the front-end`);
        assert.ok(r.attempt.mail.startsWith('250') || r.retry, `${c.expected} #${m.index + 1}: MAIL FROM answered`);
        if (!want) {
          // upstream's proxy closes its downstream connection after pipeline_limit (4) messages;
          // the expected transcript is the first connection's only
          t.diagnostic(`${c.expected} #${m.index + 1}: not in the expected transcript (upstream's pipeline_limit 4 moved it to a second downstream connection, not recorded)`);
          totals.messagesNotInTranscript++;
          continue;
        }
        const label = `smtp ${c.expected}${messages.length > 1 ? ` #${m.index + 1}` : ''}`;
        const outcome = proxyOutcome(r.attempt, r.client.bound, r.client.mapped, result.authservId);
        // a MAIL FROM we refused as syntax was sent again with the address cleaned: compare that message
        const message = r.retry ? { ...proxyOutcome(r.retry, r.client.bound, r.client.mapped, result.authservId), mailRefused: outcome.mailRefused } : outcome;
        const ev = evaluate(c, m, settings, want, message, label);
        record(c, ev, t);
        compared += ev.checks.length;
        const bad = ev.checks.filter((x) => x.expected !== x.got && !DIFFERENCES.some((d) => d.applies(c, x)));
        assert.deepEqual(bad, [], `${label}: differences without a known reason`);
      }
      assert.ok(compared > 0, 'something was compared');
    });
  }
});

describe('authentication_milter end-to-end cases: summary', () => {
  it('counts, and every listed difference still occurs', (t) => {
    const per = [...totals.perMethod].map(([k, v]) => `${k} ${v.equal}/${v.compared}`).join(', ');
    t.diagnostic(
      `${totals.cases} messages evaluated (${totals.skipped} case skipped, ${totals.messagesNotInTranscript} messages beyond upstream's transcript); ${totals.compared} values compared: ${totals.equal} equal, ${totals.differing} differing (${per}); ${totals.notCompared} method comparisons not applicable`,
    );
    t.diagnostic(
      `${casesCompared.size} (case, mode) pairs compared: ${casesCompared.size - casesDiffering.size} equal in every value, ${casesDiffering.size} with differences (${[...casesDiffering].join(', ')})`,
    );
    for (const d of DIFFERENCES) t.diagnostic(`${d.id}: ${seenDifferences.get(d.id) ?? 0}× — ${d.reason}`);
    assert.deepEqual(unexplained, [], 'differences without a known reason');
    assert.deepEqual(
      DIFFERENCES.filter((d) => !seenDifferences.has(d.id)).map((d) => d.id),
      [],
      'listed differences that no longer occur',
    );
    // 33 milter messages; 37 proxy cases with 44 messages, less the case without an expected file
    // and the 2 pipelined messages beyond upstream's pipeline_limit
    assert.equal(totals.cases, 74, 'messages evaluated');
    assert.equal(totals.skipped, 1, 'cases without an expected output');
    assert.equal(totals.messagesNotInTranscript, 2, 'messages beyond the recorded transcript');
  });
});
