/**
 * check_host() (RFC 7208 §4): fetch and select the record of <domain>, evaluate its mechanisms
 * left to right, follow include (§5.2) and redirect= (§6.1), and fetch exp= text on fail (§6.2).
 *
 * Limits (§4.6.4): at most `maxDnsLookups` terms that query DNS (include, a, mx, ptr, exists,
 * redirect), at most `maxVoidLookups` of them answering NXDOMAIN or no records, at most
 * `maxMxNames` MX names per "mx" (permerror beyond) and `maxPtrNames` PTR names per "ptr" or %{p}
 * (the rest ignored), all within `maxElapsedMs` (temperror beyond). Identical queries within one
 * evaluation are asked once; every term still counts.
 *
 * DNS trouble never throws: SERVFAIL, REFUSED, a timeout or a resolver that misbehaves give
 * temperror (§5, except where ptr and exp say to ignore it), NXDOMAIN and NODATA are void.
 */
import { domainToASCII } from 'node:url';
import { type Clock, systemClock } from '../../common/clock.ts';
import { formatIp, type IpAddress, parseIp, reverseName } from '../../common/ip.ts';
import type { DnsResult, RecordType, Resolver } from '../../dns/types.ts';
import { expandMacroString, type MacroString, type MacroValues, parseMacroString, truncateDomain } from './macro.ts';
import { ip4ToNumber, parseIp6, parseRecord, type SpfMechanism, type SpfRecord, selectRecord } from './parse.ts';
import {
  type CheckHostArgs,
  DEFAULT_SPF_LIMITS,
  type SpfDeps,
  type SpfFact,
  type SpfLimits,
  type SpfResult,
} from './types.ts';

type MatchResult = 'pass' | 'fail' | 'softfail' | 'neutral';

const QUALIFIER_RESULT: Record<string, MatchResult> = { '+': 'pass', '-': 'fail', '~': 'softfail', '?': 'neutral' };

/** What evaluating one domain's record came to (before exp=). */
interface Outcome {
  result: MatchResult | 'none';
  /** the domain whose record decided the result */
  domain: string;
  mechanism?: string;
  /** the exp= of the record that decided the result */
  exp?: MacroString | null;
  /** why there was no record (for none) */
  why?: string;
}

/** Ends the evaluation with permerror or temperror. */
class SpfAbort extends Error {
  readonly result: 'permerror' | 'temperror';
  constructor(result: 'permerror' | 'temperror', message: string) {
    super(message);
    this.result = result;
  }
}

function resolveLimits(partial: Partial<SpfLimits> | undefined): SpfLimits {
  if (!partial) return DEFAULT_SPF_LIMITS;
  const limits: SpfLimits = { ...DEFAULT_SPF_LIMITS };
  for (const key of Object.keys(limits) as (keyof SpfLimits)[]) {
    const v = partial[key];
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) limits[key] = Math.floor(v);
  }
  return limits;
}

/**
 * §4.3: the initial <domain> must be a multi-label name of LDH (or underscore) labels of 1–63
 * octets, at most 253 in all, whose last label is not all-numeric; otherwise the result is none.
 */
export function initialDomainProblem(domain: string): string | null {
  if (domain.length === 0) return 'the domain is empty';
  if (domain.length > 253) return 'the domain is longer than 253 characters';
  let start = 0;
  let labels = 0;
  let numeric = true;
  for (let i = 0; i <= domain.length; i++) {
    const c = i < domain.length ? domain.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      const len = i - start;
      if (len === 0) return 'the domain has an empty label';
      if (len > 63) return `the label '${domain.slice(start, start + 16)}…' is longer than 63 characters`;
      labels++;
      if (i < domain.length) numeric = true;
      start = i + 1;
      continue;
    }
    const ldh =
      (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f;
    if (!ldh) {
      const end = domain.indexOf('.', i);
      const label = domain.slice(start, end < 0 ? domain.length : end);
      return `the label '${label}' has characters not allowed in a host name`;
    }
    if (c < 0x30 || c > 0x39) numeric = false;
  }
  if (labels < 2) return 'the domain is not a multi-label domain name';
  if (numeric) return 'the top-level label is all-numeric';
  return null;
}

/**
 * A name produced by macro expansion (after truncation) that no DNS query can carry: an empty
 * label, a label over 63 octets, or a character outside printable US-ASCII (space included, as %_
 * produces it). Such a target is treated as non-existent (§4.3, §4.8 by analogy).
 */
function targetProblem(name: string): string | null {
  if (name.length === 0) return 'it is empty';
  let start = 0;
  for (let i = 0; i <= name.length; i++) {
    const c = i < name.length ? name.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      const len = i - start;
      if (len === 0) return 'it has an empty label';
      if (len > 63) return 'it has a label longer than 63 characters';
      start = i + 1;
    } else if (c < 0x20 || c > 0x7e) return 'it has a character outside US-ASCII';
  }
  return null;
}

function prefixMatch(a: Uint8Array, b: Uint8Array, prefix: number): boolean {
  const full = prefix >> 3;
  for (let i = 0; i < full; i++) if (a[i] !== b[i]) return false;
  const rest = prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (a[full]! & mask) === (b[full]! & mask);
}

function forwardNibbles(bytes: Uint8Array): string {
  const out: string[] = [];
  for (const b of bytes) out.push((b >> 4).toString(16), (b & 15).toString(16));
  return out.join('.');
}

/** One check_host() evaluation, with its counters, query memo and deadline. */
class Evaluation {
  lookups = 0;
  voidLookups = 0;
  readonly limits: SpfLimits;
  private readonly resolver: Resolver;
  private readonly clock: Clock;
  private readonly deadline: number;
  private readonly cache = new Map<string, Promise<DnsResult<RecordType>>>();
  private readonly controller = new AbortController();
  private readonly timer: ReturnType<typeof setTimeout>;
  private readonly timeout: Promise<DnsResult<RecordType>>;
  private expired = false;
  private expiredWhy = '';
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort: () => void;
  private readonly v4: boolean;
  private readonly ip4: number;
  private readonly ip6: Uint8Array;
  private readonly ipText: string;
  private readonly values: MacroValues;
  private ptrNameCache: string | null = null;
  private readonly ip: IpAddress;
  private validatedNames: Promise<string[]> | null = null;
  private readonly parsed = new Map<string, ReturnType<typeof parseRecord>>();

  constructor(
    ip: IpAddress,
    ipText: string,
    args: CheckHostArgs,
    sender: { s: string; l: string; o: string },
    deps: SpfDeps,
  ) {
    this.resolver = deps.resolver;
    this.clock = deps.clock ?? systemClock;
    this.limits = resolveLimits(deps.limits);
    const now = this.clock.now();
    this.deadline = now + this.limits.maxElapsedMs;
    this.ip = ip;
    let fire!: (r: DnsResult<RecordType>) => void;
    this.timeout = new Promise((resolve) => {
      fire = resolve;
    });
    const expire = (why: string) => {
      if (this.expired) return;
      this.expired = true;
      this.expiredWhy = why;
      this.controller.abort();
      fire({ status: 'timeout', message: why });
    };
    const elapsed = `SPF evaluation took longer than ${this.limits.maxElapsedMs} ms (§4.6.4)`;
    this.timer = setTimeout(() => expire(elapsed), this.limits.maxElapsedMs);
    this.expiredWhy = elapsed;
    this.signal = deps.signal;
    this.onAbort = () => expire('SPF evaluation was aborted by the caller');
    if (this.signal) {
      if (this.signal.aborted) this.onAbort();
      else this.signal.addEventListener('abort', this.onAbort, { once: true });
    }
    this.v4 = ip.family === 4;
    this.ip4 = this.v4 ? ((ip.bytes[0]! << 24) | (ip.bytes[1]! << 16) | (ip.bytes[2]! << 8) | ip.bytes[3]!) >>> 0 : 0;
    this.ip6 = ip.bytes;
    this.ipText = ipText;
    this.values = {
      s: sender.s,
      l: sender.l,
      o: sender.o,
      d: '',
      i: this.v4 ? this.ipText : forwardNibbles(ip.bytes),
      p: 'unknown',
      h: args.helo || 'unknown',
      c: this.ipText,
      r: args.receiver || 'unknown',
      t: String(Math.floor(now / 1000)),
      v: this.v4 ? 'in-addr' : 'ip6',
    };
  }

  /** The in-addr.arpa / ip6.arpa name of <ip>, computed on first use. */
  private get ptrName(): string {
    this.ptrNameCache ??= reverseName(this.ip);
    return this.ptrNameCache;
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.signal?.removeEventListener('abort', this.onAbort);
  }

  // ---- DNS ------------------------------------------------------------------------------------

  private query<T extends RecordType>(name: string, type: T): Promise<DnsResult<T>> {
    const key = type + ' ' + name;
    let pending = this.cache.get(key);
    if (!pending) {
      pending = this.ask(name, type);
      this.cache.set(key, pending);
    }
    return pending as Promise<DnsResult<T>>;
  }

  private async ask(name: string, type: RecordType): Promise<DnsResult<RecordType>> {
    if (this.expired || this.clock.now() >= this.deadline) {
      this.expired = true;
      return { status: 'timeout', message: this.expiredWhy };
    }
    try {
      return await Promise.race([this.resolver.query(name, type, { signal: this.controller.signal }), this.timeout]);
    } catch (e) {
      return { status: 'error', message: e instanceof Error ? e.message : String(e) };
    }
  }

  private failed(result: DnsResult<RecordType>, name: string, type: RecordType): never {
    if (this.expired) throw this.deadlineError();
    const message = 'message' in result && result.message ? ` (${result.message})` : '';
    throw new SpfAbort('temperror', `the DNS ${type} lookup of ${name} failed: ${result.status}${message}`);
  }

  private deadlineError(): SpfAbort {
    return new SpfAbort('temperror', this.expiredWhy);
  }

  private countLookup(term: string): void {
    if (++this.lookups > this.limits.maxDnsLookups) {
      throw new SpfAbort(
        'permerror',
        `more than ${this.limits.maxDnsLookups} DNS-querying terms (§4.6.4); the limit was hit at '${term}'`,
      );
    }
  }

  private countVoid(term: string, name: string): void {
    if (++this.voidLookups > this.limits.maxVoidLookups) {
      throw new SpfAbort(
        'permerror',
        `more than ${this.limits.maxVoidLookups} void lookups (§4.6.4); the last was ${name} for '${term}'`,
      );
    }
  }

  // ---- records --------------------------------------------------------------------------------

  async checkDomain(domain: string): Promise<Outcome> {
    const answer = await this.query(domain, 'TXT');
    if (answer.status !== 'ok') {
      if (answer.status === 'nxdomain') return { result: 'none', domain, why: `${domain} does not exist` };
      if (answer.status === 'nodata') return { result: 'none', domain, why: `${domain} has no TXT records` };
      this.failed(answer, domain, 'TXT');
    }
    const selection = selectRecord(answer.records);
    if (selection.kind === 'none') return { result: 'none', domain, why: `${domain} publishes no SPF record` };
    if (selection.kind === 'multiple') {
      throw new SpfAbort('permerror', `${domain} publishes ${selection.count} SPF records; only one is allowed (§4.5)`);
    }
    let parsed = this.parsed.get(selection.text);
    if (!parsed) {
      parsed = parseRecord(selection.text);
      this.parsed.set(selection.text, parsed);
    }
    if (!parsed.ok) {
      const where = parsed.error.term !== null ? ` in '${parsed.error.term}'` : '';
      throw new SpfAbort('permerror', `the SPF record of ${domain} is invalid${where}: ${parsed.error.message}`);
    }
    return this.evaluateRecord(parsed.record, domain);
  }

  private async evaluateRecord(record: SpfRecord, domain: string): Promise<Outcome> {
    for (const m of record.mechanisms) {
      let match: boolean;
      switch (m.kind) {
        case 'all':
          match = true;
          break;
        case 'ip4':
          match = this.v4 && ((this.ip4 & m.mask) >>> 0) === m.network;
          break;
        case 'ip6':
          match = !this.v4 && prefixMatch(this.ip6, m.network, m.prefix);
          break;
        default:
          match = await this.matchDns(m, domain);
      }
      if (match) return { result: QUALIFIER_RESULT[m.qualifier]!, domain, mechanism: m.text, exp: record.exp };
    }
    if (record.redirect) {
      const term = `redirect=${record.redirect.text}`;
      this.countLookup(term);
      const target = await this.target(record.redirect, domain);
      if (typeof target !== 'string') {
        throw new SpfAbort('permerror', `'${term}': the target ${target.name} is not a valid domain name: ${target.why}`);
      }
      const inner = await this.checkDomain(target);
      if (inner.result === 'none') {
        throw new SpfAbort('permerror', `'${term}': ${inner.why ?? `${target} has no SPF record`} (§6.1)`);
      }
      return inner;
    }
    return { result: 'neutral', domain };
  }

  /** Expands a domain-spec into a queryable name (lower case), or says why it is not one. */
  private async target(spec: MacroString, domain: string): Promise<string | { name: string; why: string }> {
    const p = spec.usesP ? await this.pMacro(domain) : 'unknown';
    this.values.d = domain;
    this.values.p = p;
    const name = truncateDomain(expandMacroString(spec, this.values));
    const why = targetProblem(name);
    return why === null ? name.toLowerCase() : { name: `'${name}'`, why };
  }

  private async matchDns(m: Exclude<SpfMechanism, { kind: 'all' | 'ip4' | 'ip6' }>, domain: string): Promise<boolean> {
    this.countLookup(m.text);
    let name = domain;
    if (m.domain) {
      const t = await this.target(m.domain, domain);
      if (typeof t !== 'string') {
        if (m.kind === 'include') {
          throw new SpfAbort('permerror', `'${m.text}': the target ${t.name} is not a valid domain name: ${t.why}`);
        }
        return false;
      }
      name = t;
    }
    switch (m.kind) {
      case 'include': {
        const inner = await this.checkDomain(name);
        if (inner.result === 'none') {
          throw new SpfAbort('permerror', `'${m.text}': ${inner.why ?? `${name} has no SPF record`} (§5.2)`);
        }
        return inner.result === 'pass';
      }
      case 'a': {
        const type = this.v4 ? 'A' : 'AAAA';
        const answer = await this.query(name, type);
        if (answer.status === 'ok') return this.anyAddress(answer.records, m.cidr4, m.cidr6);
        if (answer.status === 'nxdomain' || answer.status === 'nodata') this.countVoid(m.text, name);
        else this.failed(answer, name, type);
        return false;
      }
      case 'mx':
        return this.matchMx(m.text, name, m.cidr4, m.cidr6);
      case 'ptr':
        return this.matchPtr(m.text, name);
      case 'exists': {
        const answer = await this.query(name, 'A');
        if (answer.status === 'ok') return answer.records.length > 0;
        if (answer.status === 'nxdomain' || answer.status === 'nodata') this.countVoid(m.text, name);
        else this.failed(answer, name, 'A');
        return false;
      }
    }
  }

  private anyAddress(records: readonly string[], cidr4: number, cidr6: number): boolean {
    if (this.v4) {
      if (cidr4 === 32) {
        for (const r of records) if (r === this.ipText) return true;
      }
      const mask = cidr4 === 0 ? 0 : (0xffffffff << (32 - cidr4)) >>> 0;
      const want = (this.ip4 & mask) >>> 0;
      for (const r of records) {
        const n = ip4ToNumber(r);
        if (n !== null && ((n & mask) >>> 0) === want) return true;
      }
      return false;
    }
    for (const r of records) {
      const bytes = parseIp6(r);
      if (bytes && prefixMatch(bytes, this.ip6, cidr6)) return true;
    }
    return false;
  }

  private async matchMx(term: string, name: string, cidr4: number, cidr6: number): Promise<boolean> {
    const answer = await this.query(name, 'MX');
    if (answer.status !== 'ok') {
      if (answer.status === 'nxdomain' || answer.status === 'nodata') this.countVoid(term, name);
      else this.failed(answer, name, 'MX');
      return false;
    }
    // a null MX (RFC 7505) names no host
    const hosts = answer.records.filter((r) => r.exchange !== '').sort((x, y) => x.preference - y.preference);
    if (hosts.length > this.limits.maxMxNames) {
      throw new SpfAbort(
        'permerror',
        `'${term}': ${name} has ${hosts.length} MX names, more than the ${this.limits.maxMxNames} allowed (§4.6.4)`,
      );
    }
    const type = this.v4 ? 'A' : 'AAAA';
    const pending = hosts.map((h) => this.query(h.exchange.toLowerCase(), type));
    for (let k = 0; k < pending.length; k++) {
      const a = await pending[k]!;
      if (a.status === 'ok') {
        if (this.anyAddress(a.records, cidr4, cidr6)) return true;
      } else if (a.status !== 'nxdomain' && a.status !== 'nodata') {
        this.failed(a, hosts[k]!.exchange, type);
      }
    }
    return false;
  }

  /** The PTR names of <ip> (first maxPtrNames), or null on a DNS error, or 'void'. */
  private async ptrNames(): Promise<string[] | null | 'void'> {
    const answer = await this.query(this.ptrName, 'PTR');
    if (answer.status === 'ok') {
      const names: string[] = [];
      for (const r of answer.records) {
        if (names.length >= this.limits.maxPtrNames) break;
        const n = r.toLowerCase();
        names.push(n.endsWith('.') ? n.slice(0, -1) : n);
      }
      return names;
    }
    if (this.expired) throw this.deadlineError();
    return answer.status === 'nxdomain' || answer.status === 'nodata' ? 'void' : null;
  }

  /** §5.5: a name is validated when one of its addresses (of <ip>'s family) is <ip>. */
  private async validates(name: string): Promise<boolean> {
    const type = this.v4 ? 'A' : 'AAAA';
    const answer = await this.query(name, type);
    if (answer.status !== 'ok') {
      if (this.expired) throw this.deadlineError();
      return false; // a DNS error skips this name (§5.5)
    }
    return this.anyAddress(answer.records, 32, 128);
  }

  private async matchPtr(term: string, target: string): Promise<boolean> {
    const names = await this.ptrNames();
    if (names === null) return false; // DNS error: no match (§5.5)
    if (names === 'void') {
      this.countVoid(term, this.ptrName);
      return false;
    }
    const candidates = names.filter((n) => n === target || n.endsWith('.' + target));
    if (candidates.length === 0) return false;
    const checks = await Promise.all(candidates.map((n) => this.validates(n)));
    return checks.includes(true);
  }

  /** %{p} (§7.3): a validated name of <ip>, one under <domain> preferred, else "unknown". */
  private async pMacro(domain: string): Promise<string> {
    if (!this.validatedNames) {
      this.validatedNames = (async () => {
        const names = await this.ptrNames();
        if (names === null || names === 'void') return [];
        const checks = await Promise.all(names.map((n) => this.validates(n)));
        return names.filter((_, k) => checks[k]);
      })();
    }
    const valid = await this.validatedNames;
    if (valid.length === 0) return 'unknown';
    return valid.find((n) => n === domain || n.endsWith('.' + domain)) ?? valid[0]!;
  }

  // ---- exp= -------------------------------------------------------------------------------------

  /** §6.2: any trouble (bad target, DNS, not exactly one TXT, bad syntax, non-ASCII) means no text. */
  async explain(exp: MacroString, domain: string): Promise<string | undefined> {
    try {
      const target = await this.target(exp, domain);
      if (typeof target !== 'string') return undefined;
      const answer = await this.query(target, 'TXT');
      if (answer.status !== 'ok' || answer.records.length !== 1) return undefined;
      const text = answer.records[0]!.join('');
      if (/[^\x20-\x7e]/.test(text)) return undefined;
      const parsed = parseMacroString(text, 'explain');
      if (!parsed.ok) return undefined;
      const p = parsed.value.usesP ? await this.pMacro(domain) : 'unknown';
      this.values.d = domain;
      this.values.p = p;
      const explanation = expandMacroString(parsed.value, this.values);
      return explanation.length > 0 ? explanation : undefined;
    } catch {
      return undefined;
    }
  }
}

function verdict(outcome: Outcome, ip: string, top: string): string {
  const via = outcome.domain === top ? '' : ` (reached by redirect from ${top})`;
  const record = `the SPF record of ${outcome.domain}${via}`;
  const term = outcome.mechanism ? ` ('${outcome.mechanism}' matched)` : '';
  switch (outcome.result) {
    case 'pass':
      return `${record} designates ${ip} as a permitted sender${term}`;
    case 'fail':
      return `${record} does not designate ${ip} as a permitted sender${term}`;
    case 'softfail':
      return `${record} says ${ip} is probably not a permitted sender${term}`;
    case 'neutral':
      return outcome.mechanism
        ? `${record} makes no assertion about ${ip}${term}`
        : `no mechanism of ${record} matched ${ip}; the default result is neutral`;
    default:
      return `no SPF record: ${outcome.why ?? `${top} publishes none`}`;
  }
}

/** parseIp with a fast path for the common dotted quad. */
function parseClientIp(text: string): IpAddress | null {
  const n = ip4ToNumber(text);
  if (n !== null) return { family: 4, bytes: Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255) };
  return parseIp(text.trim());
}

function splitSender(sender: string, domain: string): { s: string; l: string; o: string } {
  const at = sender.lastIndexOf('@');
  if (at < 0) return { s: `postmaster@${domain}`, l: 'postmaster', o: domain };
  const l = sender.slice(0, at) || 'postmaster';
  const o = sender.slice(at + 1).toLowerCase() || domain;
  return { s: `${l}@${o}`, l, o };
}

/**
 * check_host(<ip>, <domain>, <sender>) per RFC 7208 §4. Never throws and always settles within
 * limits.maxElapsedMs (plus scheduling delay).
 */
export async function checkHost(args: CheckHostArgs, deps: SpfDeps): Promise<SpfFact> {
  const identity = args.identity ?? 'mailfrom';
  let domain = args.domain.trim().toLowerCase();
  if (domain.endsWith('.')) domain = domain.slice(0, -1);
  // an internationalized name is looked up in its A-label form (domainToASCII gives '' for none)
  const idn = /[^\x00-\x7f]/.test(domain);
  if (idn) domain = domainToASCII(domain);
  const sender = splitSender(args.sender, domain);
  const ip = parseClientIp(args.ip);
  // a dotted quad that passed the strict ip4 grammar is already canonical
  const ipText = ip ? (ip.family === 4 && ip4ToNumber(args.ip) !== null ? args.ip : formatIp(ip)) : args.ip;
  const base = { identity, domain, sender: sender.s, ip: ipText, lookups: 0, voidLookups: 0 };
  if (!ip) {
    return { ...base, result: 'none', reason: `SPF was not evaluated: '${args.ip}' is not an IP address` };
  }
  const problem = idn && domain === '' ? 'it is not a valid internationalized domain name' : initialDomainProblem(domain);
  if (problem !== null) {
    return { ...base, domain: args.domain, result: 'none', reason: `'${args.domain}' cannot have an SPF record: ${problem} (§4.3)` };
  }
  let evaluation: Evaluation | null = null;
  try {
    evaluation = new Evaluation(ip, ipText, args, sender, deps);
    const outcome = await evaluation.checkDomain(domain);
    const fact: SpfFact = {
      ...base,
      result: outcome.result,
      reason: verdict(outcome, base.ip, domain),
      lookups: evaluation.lookups,
      voidLookups: evaluation.voidLookups,
    };
    if (outcome.mechanism) fact.mechanism = outcome.mechanism;
    if (outcome.result === 'fail' && outcome.exp) {
      const explanation = await evaluation.explain(outcome.exp, outcome.domain);
      if (explanation !== undefined) fact.explanation = explanation;
    }
    return fact;
  } catch (e) {
    const lookups = evaluation?.lookups ?? 0;
    const voidLookups = evaluation?.voidLookups ?? 0;
    if (e instanceof SpfAbort) return { ...base, result: e.result, reason: e.message, lookups, voidLookups };
    const message = e instanceof Error ? e.message : String(e);
    const result: SpfResult = 'temperror';
    return { ...base, result, reason: `internal error while evaluating SPF: ${message}`, lookups, voidLookups };
  } finally {
    evaluation?.dispose();
  }
}
