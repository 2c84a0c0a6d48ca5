/**
 * The authentication_milter end-to-end cases (../shared/testdata/authmilter-e2e, see its
 * SOURCE.md) as data for our adapter tests: the cases and their messages, the expected outputs
 * read per method, upstream's configurations mapped onto ours, an engine whose policy hook keeps
 * a copy of the facts at the end of each message, and the comparison of our results with
 * upstream's, method by method (spf, dkim, dmarc), never byte for byte.
 *
 * Reading the expected outputs:
 * - milter mode: the message as upstream delivered it; its first Authentication-Results field is
 *   upstream's own (the others are received ones it kept), or a single line
 *   "Message rejected with code : 550 ..." when it refused the message;
 * - proxy mode: the transcript upstream sent downstream; each transaction starts with XFORWARD
 *   lines and MAIL FROM, and the message's header block follows DATA.
 * Methods upstream has and we do not (dkim-adsp, iprev, x-ptr, x-google-dkim, senderid, x-tls,
 * x-local-ip, x-trusted-ip) are not compared; iprev is left out of this comparison as well.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { Engine, staticPolicy } from '../../src/engine/engine.ts';
import type { Facts } from '../../src/engine/facts.ts';
import type { Verdict } from '../../src/engine/verdict.ts';
import type { Resolver } from '../../src/dns/types.ts';
import { type Config, defaultConfig } from '../../src/policy/config.ts';
import { type BindZone, parseBindZone } from './bind-zone.ts';

export const E2E_DIR = new URL('../../../shared/testdata/authmilter-e2e/', import.meta.url);

export type Mode = 'milter' | 'smtp';

export interface E2eCase {
  mode: Mode;
  desc: string;
  config: string;
  source: string | string[];
  expected: string;
  ip: string | string[];
  helo: string | string[];
  mail_from: string | string[];
  rcpt_to: string | string[];
}

/** One message of a case (pipelined cases have several). */
export interface E2eMessage {
  index: number;
  source: string;
  ip: string;
  helo: string;
  /** as upstream's client gave it (cases.yml) */
  mailFrom: string;
  rcptTo: string;
}

const list = (v: string | string[]): string[] => (Array.isArray(v) ? v : [v]);

export function readData(path: string): string {
  return readFileSync(new URL(path, E2E_DIR), 'latin1');
}

export function loadCases(): E2eCase[] {
  return (parse(readData('cases.yml')) as { cases: E2eCase[] }).cases;
}

export function caseMessages(c: E2eCase): E2eMessage[] {
  return list(c.source).map((source, i) => ({
    index: i,
    source,
    ip: list(c.ip)[i]!,
    helo: list(c.helo)[i]!,
    mailFrom: list(c.mail_from)[i]!,
    rcptTo: list(c.rcpt_to)[i]!,
  }));
}

export function loadZone(): BindZone {
  return parseBindZone(readData('zonefile'));
}

/** A source message as it travels over SMTP: every line end CRLF (the files are mostly LF). */
export function sourceMessage(name: string): string {
  return readData(`source/${name}`).replace(/\r?\n/g, '\r\n');
}

/**
 * The address and ESMTP parameters of a MAIL FROM argument as upstream's client gave it
 * ("marc@x", "<marc@x>", "<marc@x> BODY=8BITMIME", "" for the null sender).
 */
export function envelopeAddress(mailFrom: string): { address: string; params: string[] } {
  const s = mailFrom.trim();
  if (s.startsWith('<')) {
    const end = s.indexOf('>');
    return { address: s.slice(1, end), params: s.slice(end + 1).trim().split(/\s+/).filter(Boolean) };
  }
  return { address: s, params: [] };
}

/** The authserv-id upstream's output uses for a case (its own Authentication-Results). */
export function authservIdFor(c: E2eCase): string {
  for (const e of expectedMessages(c)) if (e?.authResults) return e.authResults.authservId;
  const configured = /"authserv_id"\s*:\s*"([^"]+)"/.exec(readData(`config/${c.config}.json`));
  if (configured) return configured[1]!;
  // upstream's defaults in this suite: the test host's name in milter mode, the proxy's in SMTP mode
  return c.mode === 'milter' ? 'test.module' : 'server.example.com';
}

// ---------------------------------------------------------------------------------------------
// Header fields and Authentication-Results

/** The header block's fields: name as written before the colon, value after it with folding (CRLF) kept. */
export function headerFields(text: string): Array<{ name: string; value: string }> {
  const fields: Array<{ name: string; value: string }> = [];
  for (const line of text.split(/\r?\n/)) {
    if (line === '') break;
    if (/^[ \t]/.test(line)) {
      if (fields.length > 0) fields[fields.length - 1]!.value += `\r\n${line}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon > 0) fields.push({ name: line.slice(0, colon), value: line.slice(colon + 1) });
  }
  return fields;
}

/** A message's header block and body (CRLF text). */
export function splitHeaderBody(text: string): { header: string; body: string } {
  const at = text.indexOf('\r\n\r\n');
  if (at < 0) return { header: text, body: '' };
  return { header: text.slice(0, at + 2), body: text.slice(at + 4) };
}

export interface ResInfo {
  method: string;
  result: string;
  /** ptype.property → value (unquoted), lower-case keys; reason= under "reason" */
  props: Record<string, string>;
  /** the comments' text, in order */
  comments: string[];
}

export interface AuthResults {
  authservId: string;
  results: ResInfo[];
}

/**
 * Parses an Authentication-Results value (RFC 8601 §2.2): authserv-id [version]; resinfo; ...
 * Comments are kept per resinfo; quoted strings may hold ";" and "(".
 */
export function parseAuthResults(value: string): AuthResults {
  const segments: Array<{ text: string; comments: string[] }> = [{ text: '', comments: [] }];
  let depth = 0;
  let quoted = false;
  let comment = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    const seg = segments[segments.length - 1]!;
    if (depth > 0) {
      if (c === '\\') {
        comment += value[++i] ?? '';
      } else if (c === '(') {
        depth++;
        comment += c;
      } else if (c === ')') {
        depth--;
        if (depth === 0) {
          seg.comments.push(comment.replace(/\s+/g, ' ').trim());
          comment = '';
          seg.text += ' ';
        } else comment += c;
      } else comment += c;
      continue;
    }
    if (quoted) {
      if (c === '\\') seg.text += value[++i] ?? '';
      else if (c === '"') {
        quoted = false;
        seg.text += '\u0001';
      } else seg.text += c === ' ' ? '\u0002' : c;
      continue;
    }
    if (c === '"') {
      quoted = true;
      seg.text += '\u0001';
    } else if (c === '(') depth = 1;
    else if (c === ';') segments.push({ text: '', comments: [] });
    else seg.text += c;
  }
  const words = (s: string) =>
    s
      .split(/\s+/)
      .filter(Boolean)
      .map((w) => w.replace(/\u0001/g, '').replace(/\u0002/g, ' '));
  const authservId = words(segments[0]!.text)[0] ?? '';
  const results: ResInfo[] = [];
  for (const seg of segments.slice(1)) {
    const w = words(seg.text.replace(/\s*=\s*/g, '='));
    const head = /^([A-Za-z0-9-]+)(?:\/\d+)?=(.*)$/.exec(w[0] ?? '');
    if (!head) continue;
    const props: Record<string, string> = {};
    for (const p of w.slice(1)) {
      const eq = p.indexOf('=');
      if (eq > 0) props[p.slice(0, eq).toLowerCase()] = p.slice(eq + 1);
    }
    results.push({ method: head[1]!.toLowerCase(), result: head[2]!.toLowerCase(), props, comments: seg.comments });
  }
  return { authservId, results };
}

/** Every Authentication-Results field of a header block, parsed, in order. */
export function authResultsFields(header: string): AuthResults[] {
  return headerFields(header)
    .filter((f) => f.name.trim().toLowerCase() === 'authentication-results')
    .map((f) => parseAuthResults(f.value));
}

// ---------------------------------------------------------------------------------------------
// Expected outputs

export interface ExpectedMessage {
  /** upstream's own Authentication-Results (null: it added none, e.g. in a dry run) */
  authResults: AuthResults | null;
  /** the authserv-ids of the received Authentication-Results fields upstream left in place */
  keptAuthservIds: string[];
  /** "550 5.7.0 DMARC policy violation" when upstream refused the message */
  rejected: string | null;
  /** proxy mode: the XFORWARD attributes upstream sent downstream for this transaction */
  xforward: Record<string, string> | null;
}

function expectedFromHeader(header: string): Omit<ExpectedMessage, 'rejected' | 'xforward'> {
  const all = authResultsFields(header);
  const own = all[0] ?? null;
  return { authResults: own, keptAuthservIds: all.slice(1).map((a) => a.authservId.toLowerCase()) };
}

/** The expected output of each message of a case (undefined: not in the data set). */
export function expectedMessages(c: E2eCase): Array<ExpectedMessage | undefined> {
  let text: string;
  try {
    text = readData(`expected/${c.expected}`).replace(/\r?\n/g, '\r\n');
  } catch {
    return caseMessages(c).map(() => undefined);
  }
  if (c.mode === 'milter') {
    const rejected = /^Message rejected with code : (.*?)\s*$/m.exec(text);
    if (rejected) return [{ authResults: null, keptAuthservIds: [], rejected: rejected[1]!, xforward: null }];
    return [{ ...expectedFromHeader(splitHeaderBody(text).header), rejected: null, xforward: null }];
  }
  // proxy transcripts: XFORWARD lines, MAIL FROM, RCPT, DATA, then the message; RSET between
  const lines = text.split('\r\n');
  const out: ExpectedMessage[] = [];
  let xforward: Record<string, string> = {};
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const xf = /^XFORWARD (.*)$/.exec(line);
    if (xf) {
      for (const token of xf[1]!.trim().split(/\s+/)) {
        const eq = token.indexOf('=');
        if (eq > 0) xforward[token.slice(0, eq).toUpperCase()] = token.slice(eq + 1);
      }
      continue;
    }
    if (line === 'DATA') {
      const end = lines.indexOf('', i + 1);
      const header = `${lines.slice(i + 1, end < 0 ? undefined : end).join('\r\n')}\r\n`;
      out.push({ ...expectedFromHeader(header), rejected: null, xforward });
      xforward = {};
      if (end > i) i = end;
    }
  }
  return caseMessages(c).map((_, i) => out[i]);
}

// ---------------------------------------------------------------------------------------------
// Upstream's configurations, and ours

export interface UpstreamSettings {
  name: string;
  dryrun: boolean;
  /** DMARC hard_reject: a p=reject failure is refused (else upstream quarantines: local_policy) */
  hardReject: boolean;
  /** none results are left out of the header */
  hideNone: boolean;
  /** ip_map: a client address (or a /24) is checked as another address and HELO */
  ipMap: Array<{ from: string; ip: string; helo: string }>;
  /** DMARC whitelisted: client networks and dkim:domain entries whose failures are not rejected */
  dmarcWhitelist: string[];
  /** the TrustedIP handler's list */
  trustedIps: string[];
  /** whether the handler runs at all (a "!" before the name turns it off) */
  handlers: Set<string>;
}

/** Reads config/<name>.json (Perl-flavoured JSON: "#" comments, trailing commas). */
export function upstreamSettings(name: string): UpstreamSettings {
  const text = readData(`config/${name}.json`)
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/,(\s*[}\]])/g, '$1');
  const raw = JSON.parse(text) as {
    dryrun?: number;
    hide_none?: number;
    ip_map?: Record<string, { ip: string; helo: string }>;
    handlers?: Record<string, Record<string, unknown>>;
  };
  const handlers = raw.handlers ?? {};
  const dmarc = (handlers.DMARC ?? {}) as { hard_reject?: number; hide_none?: number; whitelisted?: string[] };
  const trusted = (handlers.TrustedIP ?? {}) as { trusted_ip_list?: string[] };
  return {
    name,
    dryrun: raw.dryrun === 1,
    hardReject: dmarc.hard_reject === 1,
    hideNone: raw.hide_none === 1 || dmarc.hide_none === 1,
    ipMap: Object.entries(raw.ip_map ?? {}).map(([from, to]) => ({ from, ip: to.ip, helo: to.helo })),
    dmarcWhitelist: dmarc.whitelisted ?? [],
    trustedIps: trusted.trusted_ip_list ?? [],
    handlers: new Set(Object.keys(handlers).filter((h) => !h.startsWith('!'))),
  };
}

/** The client as upstream checks it, after its ip_map (an exact address or an a.b.c.0/24 block). */
export function mappedClient(settings: UpstreamSettings, ip: string, helo: string): { ip: string; helo: string; mapped: boolean } {
  for (const m of settings.ipMap) {
    const block = /^(\d+\.\d+\.\d+)\.0\/24$/.exec(m.from);
    if (m.from === ip || (block && ip.startsWith(`${block[1]}.`))) return { ip: m.ip, helo: m.helo, mapped: true };
  }
  return { ip, helo, mapped: false };
}

/**
 * Our configuration for an upstream one. What has an equivalent is carried over; the rest is
 * checkid's default:
 * - authserv_id: the id upstream's output uses (so forged copies are recognised the same way);
 * - headers: Authentication-Results only (the Authent: field has no upstream counterpart);
 * - spf.reject_fail and identity.reject_fail off: authentication_milter reports SPF and never
 *   refuses on it, so the message reaches DKIM and DMARC as upstream's did;
 * - dmarc.reject_on_policy: upstream's DMARC hard_reject (dmarc_reject configs); without it
 *   upstream quarantines a p=reject failure (override local_policy), as our FILTER does.
 */
export function checkidConfig(settings: UpstreamSettings, authservId: string): Config {
  const config = defaultConfig();
  config.authservId = authservId;
  config.headers = ['authentication-results'];
  config.spf.rejectFail = false;
  config.identity.rejectFail = false;
  config.dmarc.rejectOnPolicy = settings.hardReject;
  return config;
}

// ---------------------------------------------------------------------------------------------
// The engine, with the facts of each end of message kept

/** What a message's end-of-message facts and verdict said (plain data: it crosses processes). */
export interface EomSnapshot {
  action: Verdict['action'];
  reply: string;
  spf: { result: string; sender: string; domain: string } | null;
  dkim: Array<{ result: string; domain: string; selector: string; auid: string; b: string; reason: string }>;
  dmarc: Array<{ result: string; fromDomain: string; policy: string; published: string; disposition: string; reason: string }>;
}

export function snapshot(facts: Readonly<Facts>, verdict: Readonly<Verdict>): EomSnapshot {
  const s = facts.spfMailFrom;
  const dmarc = facts.dmarc ? (facts.dmarc.perDomain ?? [facts.dmarc]) : [];
  return {
    action: verdict.action,
    reply: `${verdict.reply.code} ${verdict.reply.xcode} ${verdict.reply.text}`,
    spf: s ? { result: s.result, sender: s.sender, domain: s.domain } : null,
    dkim: (facts.dkim ?? []).map((d) => ({ result: d.result, domain: d.domain, selector: d.selector, auid: d.auid ?? '', b: d.b, reason: d.reason })),
    dmarc: dmarc.map((d) => ({
      result: d.result,
      fromDomain: d.fromDomain,
      policy: d.policy,
      published: d.record?.p ?? '',
      disposition: d.disposition,
      reason: d.reason,
    })),
  };
}

/**
 * An engine on `resolver` with `config`, whose policy hook changes nothing and records the facts
 * and verdict at every end of message (`taken()` hands them over, oldest first).
 */
export function recordingEngine(config: Config, resolver: Resolver): { engine: Engine; taken: () => EomSnapshot[] } {
  let seen: EomSnapshot[] = [];
  const policy = staticPolicy(config, resolver, ({ stage, facts, verdict }) => {
    if (stage === 'eom') seen.push(snapshot(facts, verdict));
    return undefined;
  });
  return {
    engine: new Engine({ resolver, policy }),
    taken: () => {
      const out = seen;
      seen = [];
      return out;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Per-method views and their comparison

export interface MethodView {
  spf: Array<{ result: string; mailfrom: string | undefined }>;
  dkim: Array<{ result: string; d?: string | undefined; s?: string | undefined; i?: string | undefined; b?: string | undefined }>;
  dmarc: Array<{ result: string; from?: string | undefined; published?: string | undefined; evaluated?: string | undefined }>;
}

/** Upstream's header, per method. */
export function upstreamView(ar: AuthResults): MethodView {
  const view: MethodView = { spf: [], dkim: [], dmarc: [] };
  for (const r of ar.results) {
    if (r.method === 'spf') view.spf.push({ result: r.result, mailfrom: r.props['smtp.mailfrom'] });
    else if (r.method === 'dkim')
      view.dkim.push({ result: r.result, d: r.props['header.d'], s: r.props['header.s'], i: r.props['header.i'], b: r.props['header.b'] });
    else if (r.method === 'dmarc')
      view.dmarc.push({
        result: r.result,
        from: r.props['header.from'],
        published: r.props['policy.published-domain-policy'],
        evaluated: r.props['policy.evaluated-disposition'],
      });
  }
  return view;
}

/**
 * Our header, per method: the MAIL FROM spf= (the one with smtp.mailfrom; the HELO one is a
 * separate check upstream does not report), dkim=, and dmarc= with the published policy and
 * the disposition from its comment ("p=reject dis=reject").
 */
export function ourHeaderView(ar: AuthResults): MethodView {
  const view: MethodView = { spf: [], dkim: [], dmarc: [] };
  for (const r of ar.results) {
    if (r.method === 'spf' && r.props['smtp.mailfrom'] !== undefined) view.spf.push({ result: r.result, mailfrom: r.props['smtp.mailfrom'] });
    else if (r.method === 'dkim')
      view.dkim.push({ result: r.result, d: r.props['header.d'], s: r.props['header.s'], i: r.props['header.i'], b: r.props['header.b'] });
    else if (r.method === 'dmarc') {
      const words = (r.comments[0] ?? '').split(' ');
      const tag = (t: string) => words.find((w) => w.startsWith(`${t}=`))?.slice(t.length + 1);
      view.dmarc.push({ result: r.result, from: r.props['header.from'], published: tag('p'), evaluated: tag('dis') });
    }
  }
  return view;
}

/** Our facts, per method (for messages we refused: no header to read). */
export function ourFactsView(s: EomSnapshot): MethodView {
  return {
    spf: s.spf ? [{ result: s.spf.result, mailfrom: s.spf.sender }] : [],
    dkim: s.dkim.map((d) =>
      d.result === 'none' ? { result: 'none' } : { result: d.result, d: d.domain, s: d.selector, i: d.auid, b: d.b },
    ),
    dmarc: s.dmarc.map((d) => ({
      result: d.result,
      from: d.fromDomain,
      ...(d.published ? { published: d.published } : {}),
      ...(d.result === 'pass' || d.result === 'fail' ? { evaluated: d.disposition } : {}),
    })),
  };
}

export type Method = 'spf' | 'dkim' | 'dmarc';

/** One compared value: equal when `expected === got` (after the normalisation named in `what`). */
export interface Check {
  method: Method | 'reply' | 'xforward' | 'sanitize';
  /** e.g. "result", "header.d", "dkim[marcbradshaw.net/google] result" */
  what: string;
  expected: string;
  got: string;
}

/** Why a method was not compared for a message. */
export interface NotCompared {
  method: Method;
  why: string;
}

const lc = (s: string | undefined): string => (s ?? '').toLowerCase();

/**
 * Compares our view with upstream's, method by method.
 * - A method upstream left out is not compared when its handler did not run for the client
 *   (local 127.0.0.1 or a TrustedIP: upstream skips SPF and DMARC there), and counts as equal
 *   under hide_none when our result is none (upstream hides none results).
 * - spf: the result; smtp.mailfrom as upstream wrote it.
 * - dkim: one per signature, matched by d= and s=: result, header.d, header.s, header.i, and
 *   header.b (upstream's 8 characters are a prefix of ours).
 * - dmarc: one per author domain, matched by header.from: result, header.from, the published
 *   policy and the evaluated disposition (before local overrides) when the result is pass or
 *   fail (upstream writes "none" for both behind the other results, where no policy applies).
 */
export function compareViews(
  expected: MethodView,
  ours: MethodView,
  context: { hideNone: boolean; localOrTrusted: boolean },
): { checks: Check[]; notCompared: NotCompared[] } {
  const checks: Check[] = [];
  const notCompared: NotCompared[] = [];
  const absent = (method: Method, oursNone: boolean, got: string): void => {
    if (context.localOrTrusted) notCompared.push({ method, why: 'upstream skips SPF and DMARC for local and trusted clients (LocalIP/TrustedIP handlers)' });
    else if (context.hideNone) checks.push({ method, what: 'result (upstream hides none)', expected: 'none', got: oursNone ? 'none' : got });
    else checks.push({ method, what: 'result', expected: '(absent)', got });
  };

  // SPF (the MAIL FROM identity)
  if (expected.spf.length === 0) {
    if (ours.spf.length > 0) absent('spf', ours.spf.every((s) => s.result === 'none'), ours.spf.map((s) => s.result).join(','));
  } else {
    const want = expected.spf[0]!;
    const got = ours.spf[0];
    checks.push({ method: 'spf', what: 'result', expected: want.result, got: got?.result ?? '(absent)' });
    if (want.mailfrom !== undefined) checks.push({ method: 'spf', what: 'smtp.mailfrom', expected: lc(want.mailfrom), got: lc(got?.mailfrom) });
  }

  // DKIM
  if (expected.dkim.length === 0) {
    if (ours.dkim.length > 0) absent('dkim', ours.dkim.every((d) => d.result === 'none'), ours.dkim.map((d) => d.result).join(','));
  } else {
    const used = new Set<number>();
    for (const want of expected.dkim) {
      const key = want.d ? `${lc(want.d)}/${lc(want.s)}` : 'none';
      let at = ours.dkim.findIndex((g, i) => !used.has(i) && (want.d ? lc(g.d) === lc(want.d) && lc(g.s) === lc(want.s) : g.result === 'none'));
      if (at < 0) at = ours.dkim.findIndex((_, i) => !used.has(i));
      const got = at >= 0 ? ours.dkim[at] : undefined;
      if (at >= 0) used.add(at);
      checks.push({ method: 'dkim', what: `dkim[${key}] result`, expected: want.result, got: got?.result ?? '(absent)' });
      if (want.d !== undefined) checks.push({ method: 'dkim', what: `dkim[${key}] header.d`, expected: lc(want.d), got: lc(got?.d) });
      if (want.s !== undefined) checks.push({ method: 'dkim', what: `dkim[${key}] header.s`, expected: lc(want.s), got: lc(got?.s) });
      if (want.i !== undefined) checks.push({ method: 'dkim', what: `dkim[${key}] header.i`, expected: lc(want.i), got: lc(got?.i) });
      if (want.b !== undefined) {
        const b = got?.b ?? '';
        checks.push({ method: 'dkim', what: `dkim[${key}] header.b (prefix)`, expected: want.b, got: b.startsWith(want.b) ? want.b : b });
      }
    }
    ours.dkim.forEach((g, i) => {
      if (!used.has(i)) checks.push({ method: 'dkim', what: `dkim[${lc(g.d)}/${lc(g.s)}] result`, expected: '(absent)', got: g.result });
    });
  }

  // DMARC
  if (expected.dmarc.length === 0) {
    if (ours.dmarc.length > 0) absent('dmarc', ours.dmarc.every((d) => d.result === 'none'), ours.dmarc.map((d) => d.result).join(','));
  } else {
    const used = new Set<number>();
    expected.dmarc.forEach((want, n) => {
      const key = want.from ? lc(want.from) : `#${n + 1}`;
      let at = want.from ? ours.dmarc.findIndex((g, i) => !used.has(i) && lc(g.from) === lc(want.from)) : -1;
      if (at < 0) at = ours.dmarc.findIndex((_, i) => !used.has(i));
      const got = at >= 0 ? ours.dmarc[at] : undefined;
      if (at >= 0) used.add(at);
      checks.push({ method: 'dmarc', what: `dmarc[${key}] result`, expected: want.result, got: got?.result ?? '(absent)' });
      if (want.from !== undefined) checks.push({ method: 'dmarc', what: `dmarc[${key}] header.from`, expected: lc(want.from), got: lc(got?.from) });
      // a policy exists only behind pass and fail: upstream writes "none" for the others, we nothing
      const policyBearing = want.result === 'pass' || want.result === 'fail';
      if (policyBearing && want.published !== undefined) checks.push({ method: 'dmarc', what: `dmarc[${key}] published policy`, expected: want.published, got: got?.published ?? '(absent)' });
      if (policyBearing && want.evaluated !== undefined) checks.push({ method: 'dmarc', what: `dmarc[${key}] evaluated disposition`, expected: want.evaluated, got: got?.evaluated ?? '(absent)' });
    });
    ours.dmarc.forEach((g, i) => {
      if (!used.has(i)) checks.push({ method: 'dmarc', what: `dmarc[${lc(g.from)}] result`, expected: '(absent)', got: g.result });
    });
  }
  return { checks, notCompared };
}

/** Whether upstream's LocalIP or TrustedIP handler applies to a client (then SPF and DMARC do not run). */
export function localOrTrusted(settings: UpstreamSettings, ip: string): boolean {
  if (settings.handlers.has('LocalIP') && (ip.startsWith('127.') || ip === '::1')) return true;
  return settings.handlers.has('TrustedIP') && settings.trustedIps.includes(ip);
}
