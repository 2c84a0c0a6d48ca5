/**
 * The staged session: connect → HELO → ID → MAIL → RCPT → header/body → end of message. Each
 * stage starts the checks whose inputs now exist, records their facts, and asks the policy for a
 * verdict. It knows no MTA protocol; adapters call these methods.
 */
import { domainOfAddress, isFqdn, normalizeDomain, stripBrackets } from '../common/domain.ts';
import { formatIp, parseIp } from '../common/ip.ts';
import { checkCsa } from '../checks/csa/index.ts';
import { checkDnsbl } from '../checks/dnsbl/index.ts';
import { DkimVerifier } from '../checks/dkim/index.ts';
import { checkDmarc } from '../checks/dmarc/index.ts';
import { ArcVerifier } from '../checks/arc/index.ts';
import { checkHelo as checkHeloName } from '../checks/helo/index.ts';
import { checkIprev } from '../checks/iprev/index.ts';
import { scoreRatings } from '../checks/ratings/score.ts';
import type { ProviderOutcome, Rating } from '../checks/ratings/types.ts';
import { checkHelo as spfHelo, checkHost, checkMailFrom, type SpfFact } from '../checks/spf/index.ts';
import { AUTHENTICATION_RESULTS, isForgedAuthenticationResults } from '../headers/authentication-results.ts';
import { decide } from '../policy/decide.ts';
import { applyHookAnswer } from '../policy/hook.ts';
import type { LoadedPolicy } from '../policy/store.ts';
import { DeadlineError, withDeadline } from './deadline.ts';
import type { EngineContext, Prepared } from './engine.ts';
import { emptyFacts, type Facts, type RatingsFact } from './facts.ts';
import type { Stage, Verdict } from './verdict.ts';
import { type CheckName, checkResult, notifyCheck, notifyVerdict } from './observer.ts';

/** Bad input from the adapter (not an IP, CR/LF in a command argument, an ID that is no domain). */
export class SessionError extends Error {
  override name = 'SessionError';
}

/** SMTP arguments never contain line breaks or NULs; refuse them rather than carry them into replies. */
function argument(what: string, value: string): string {
  if (/[\x00\r\n]/.test(value)) throw new SessionError(`${what} contains a line break or NUL`);
  if (value.length > 1000) throw new SessionError(`${what} is longer than 1000 characters`);
  return value.trim();
}

export interface SessionOptions {
  /**
   * Header values arrive without the white space after the colon (the milter protocol without
   * SMFIP_HDR_LEADSPC); DKIM's simple canonicalization needs to know.
   */
  headerLeadingSpaceStripped?: boolean;
  /** how string header values and body chunks become octets for DKIM (default utf8) */
  encoding?: 'utf8' | 'latin1';
}

export class Session {
  readonly facts: Facts;
  private readonly options: SessionOptions;
  /** the message's end-of-message checks, fed as headers and body stream in */
  private dkim: DkimVerifier | null = null;
  private arc: ArcVerifier | null = null;
  private fromValues: string[] = [];
  private readonly ctx: EngineContext;
  private readonly policy: LoadedPolicy<Prepared>;
  private headerCounts = new Map<string, number>();
  private ipDnsbl: Facts['dnsbl'];

  constructor(ctx: EngineContext, ip: string, options: SessionOptions = {}) {
    this.options = options;
    const parsed = parseIp(ip.trim());
    if (!parsed) throw new SessionError(`not an IP address: ${JSON.stringify(ip)}`);
    this.ctx = ctx;
    this.policy = ctx.policy.current();
    this.facts = emptyFacts(formatIp(parsed));
    // the operator's own lists need no DNS: known from the start, decisive even if DNS hangs
    this.facts.localList = this.policy.prepared.localList.check({ ip: this.facts.envelope.ip, domains: {} });
  }

  get config() {
    return this.policy.config;
  }

  private deps(signal: AbortSignal) {
    return { resolver: this.ctx.resolver, clock: this.ctx.clock, signal };
  }

  /** Runs a stage (runStage) and tells the engine's observer, if any, what it decided. */
  private async stage(
    stage: Stage,
    what: string,
    work: ((signal: AbortSignal) => Promise<void>) | null,
    recipient?: string,
  ): Promise<Verdict> {
    const observer = this.ctx.observer;
    if (!observer) return this.runStage(stage, what, work, recipient);
    const started = performance.now();
    const verdict = await this.runStage(stage, what, work, recipient);
    const ms = performance.now() - started;
    notifyVerdict(
      observer,
      { stage, verdict, facts: this.facts, ms, ...(recipient !== undefined ? { recipient } : {}) },
      this.ctx.log,
    );
    return verdict;
  }

  /** A check's promise, timed and reported to the observer when it settles with a result. */
  private timed<T>(name: CheckName, task: Promise<T>): Promise<T> {
    const observer = this.ctx.observer;
    if (!observer?.check) return task;
    const started = performance.now();
    return task.then((value) => {
      // undefined: the check had nothing to do (no rating providers) and is not reported
      if (value !== undefined)
        notifyCheck(
          observer,
          { name, result: checkResult(name, value), ms: performance.now() - started },
          this.ctx.log,
        );
      return value;
    });
  }

  /** Runs a stage's checks within the deadline, then the policy (and hook); never throws. */
  private async runStage(
    stage: Stage,
    what: string,
    work: ((signal: AbortSignal) => Promise<void>) | null,
    recipient?: string,
  ): Promise<Verdict> {
    const config = this.config;
    if (work) {
      try {
        await withDeadline(config.deadlineMs, what, work);
      } catch (err) {
        if (!(err instanceof DeadlineError)) return this.internalError(stage, err);
        // the operator's own lists need no DNS: they still decide when DNS is slow
        const local = this.facts.localList;
        if (local?.ip !== 'block' && local?.ip !== 'allow') {
          return this.errorVerdict(
            stage,
            'TEMPFAIL',
            { code: 451, xcode: '4.4.3', text: `Timeout checking ${what}; try again later` },
            'timeout',
            err.message,
          );
        }
      }
    }
    let verdict: Verdict;
    try {
      verdict = decide(stage, this.facts, config, recipient !== undefined ? { recipient } : {});
    } catch (err) {
      return this.internalError(stage, err);
    }
    const hook = this.policy.hook;
    if (hook) {
      try {
        const answer = await withDeadline(config.deadlineMs, 'policy hook', async () =>
          hook({
            stage,
            facts: this.facts,
            verdict,
            config,
            ...(recipient !== undefined ? { recipient } : {}),
          }),
        );
        verdict = applyHookAnswer(verdict, answer, this.facts, config);
      } catch (err) {
        this.ctx.log('error', 'policy hook failed; using the default verdict', {
          stage,
          error: (err as Error).message,
        });
        this.facts.internalErrors.push(`hook: ${(err as Error).message}`);
      }
    }
    return verdict;
  }

  private errorVerdict(
    stage: Stage,
    action: 'TEMPFAIL' | 'ACCEPT',
    reply: Verdict['reply'],
    reason: string,
    detail: string,
  ): Verdict {
    return { action, reply, headers: [], removeHeaders: [], stage, reason, explanation: [detail] };
  }

  private internalError(stage: Stage, err: unknown): Verdict {
    const message = err instanceof Error ? `${err.message}` : String(err);
    this.facts.internalErrors.push(message);
    this.ctx.log('error', 'internal error in a check; answering with on_error', {
      stage,
      error: message,
      stack: (err as Error)?.stack,
    });
    if (this.config.onError === 'accept') {
      return this.errorVerdict(
        stage,
        'ACCEPT',
        { code: 250, xcode: '', text: 'Sender OK' },
        'internal-error',
        message,
      );
    }
    return this.errorVerdict(
      stage,
      'TEMPFAIL',
      { code: 451, xcode: '4.3.0', text: 'Temporary internal error; try again later' },
      'internal-error',
      message,
    );
  }

  /** Connection: local lists, DNS block/allow lists and iprev start here. */
  async connect(): Promise<Verdict> {
    const config = this.config;
    const ip = this.facts.envelope.ip;
    const prepared = this.policy.prepared;
    return this.stage('connect', `client ${ip}`, async (signal) => {
      const tasks: Promise<void>[] = [];
      if (prepared.ipZones.length > 0) {
        tasks.push(
          this.timed(
            'dnsbl',
            checkDnsbl({ ip }, this.deps(signal), {
              zones: prepared.ipZones,
              ...(this.ctx.dnsblMonitor ? { monitor: this.ctx.dnsblMonitor } : {}),
              signal,
            }),
          ).then((r) => {
            this.ipDnsbl = r;
            this.facts.dnsbl = r;
          }),
        );
      }
      if (config.iprev.enabled) {
        tasks.push(
          this.timed('iprev', checkIprev({ ip }, this.deps(signal), { signal })).then((r) => {
            this.facts.iprev = r;
          }),
        );
      }
      await Promise.all(tasks);
    });
  }

  /**
   * HELO/EHLO: syntax and resolution, CSA, SPF for the HELO identity, and (without an ID) the HELO
   * name as the identity. A second HELO resets the session's message state (RFC 5321 §4.1.4).
   */
  async helo(name: string): Promise<Verdict> {
    const config = this.config;
    const ip = this.facts.envelope.ip;
    const helo = argument('HELO', name);
    // a new HELO starts over: no message, no identity (an ID command must follow it)
    const f = this.facts;
    delete f.envelope.id;
    delete f.identity;
    delete f.ratings;
    delete f.spfHelo;
    delete f.csa;
    delete f.helo;
    f.envelope.helo = helo;
    this.resetMessage();
    return this.stage('helo', `HELO ${helo}`, async (signal) => {
      const deps = this.deps(signal);
      // SPF and CSA first: the HELO check's "3-strikes" verdict uses them (and iprev from connect)
      await Promise.all([
        config.csa.enabled
          ? this.timed('csa', checkCsa({ ip, helo }, deps, { signal })).then((r) => {
              this.facts.csa = r;
            })
          : undefined,
        config.spf.helo && isFqdn(helo)
          ? this.timed('spf_helo', spfHelo({ ip, helo }, deps)).then((r) => {
              this.facts.spfHelo = r;
            })
          : undefined,
      ]);
      const tasks: Promise<void>[] = [];
      if (config.helo.enabled) {
        tasks.push(
          this.timed(
            'helo',
            checkHeloName(
              {
                ip,
                helo,
                ...(f.iprev ? { iprev: f.iprev } : {}),
                ...(f.spfHelo ? { spfHelo: f.spfHelo.result } : {}),
                ...(f.csa ? { csa: f.csa.result } : {}),
              },
              deps,
              { localNames: config.helo.localNames, signal },
            ),
          ).then((r) => {
            this.facts.helo = r;
          }),
        );
      }
      if (!f.envelope.id && config.identity.useHelo && isFqdn(helo))
        tasks.push(this.authenticateIdentity(normalizeDomain(helo), 'helo', signal));
      await Promise.all(tasks);
    });
  }

  /** The ID command (declared identity): SPF on the ID domain, and its ratings. */
  async id(domain: string): Promise<Verdict> {
    const raw = argument('ID', domain);
    if (!isFqdn(raw))
      throw new SessionError(`ID ${JSON.stringify(raw)} is not a fully qualified domain name`);
    const id = normalizeDomain(raw);
    this.facts.envelope.id = id;
    this.checkLocalDomains();
    return this.stage('id', `ID ${id}`, (signal) => this.authenticateIdentity(id, 'id', signal));
  }

  private async authenticateIdentity(
    domain: string,
    source: 'id' | 'helo',
    signal: AbortSignal,
  ): Promise<void> {
    const ip = this.facts.envelope.ip;
    const deps = this.deps(signal);
    const helo = this.facts.envelope.helo;
    const spfTask: Promise<SpfFact> =
      source === 'helo' && this.facts.spfHelo
        ? Promise.resolve(this.facts.spfHelo)
        : this.timed(
            'identity',
            checkHost(
              {
                ip,
                domain,
                sender: `postmaster@${domain}`,
                ...(helo ? { helo } : {}),
                receiver: this.config.authservId,
              },
              deps,
            ),
          );
    const [spf, ratings] = await Promise.all([spfTask, this.timed('ratings', this.rate(domain, signal))]);
    this.facts.identity = { domain, source, method: 'SPF1', result: spf.result, spf };
    if (ratings) this.facts.ratings = ratings;
    else delete this.facts.ratings;
  }

  private async rate(domain: string, signal: AbortSignal): Promise<RatingsFact | undefined> {
    const providers = this.policy.prepared.ratingProviders;
    if (providers.length === 0) return undefined;
    const outcomes: ProviderOutcome[] = await Promise.all(
      providers.map((p) =>
        p
          .rate({ ip: this.facts.envelope.ip, domain }, { signal })
          .catch(
            (err: unknown): ProviderOutcome => ({
              provider: p.name,
              status: 'temperror',
              ratings: [],
              message: (err as Error).message,
            }),
          ),
      ),
    );
    const ratings: Rating[] = outcomes.flatMap((o) => (o.status === 'found' ? o.ratings : []));
    const status = outcomes.some((o) => o.status === 'found')
      ? 'found'
      : outcomes.some((o) => o.status === 'temperror')
        ? 'temperror'
        : outcomes.some((o) => o.status === 'permerror')
          ? 'permerror'
          : 'none';
    const c = this.config.ratings;
    return {
      domain,
      status,
      outcomes,
      ratings,
      scores: scoreRatings(ratings, {
        services: c.services,
        defaultScale: c.defaultScale,
        trustUnlisted: c.trustUnlisted,
      }),
    };
  }

  /** MAIL FROM: SPF for the envelope sender; domain block lists for the sender's domains. */
  async mailFrom(address: string): Promise<Verdict> {
    const config = this.config;
    const ip = this.facts.envelope.ip;
    const mailFrom = stripBrackets(argument('MAIL FROM', address));
    this.resetMessage();
    this.facts.envelope.mailFrom = mailFrom;
    this.checkLocalDomains();
    return this.stage('mail', `MAIL FROM <${mailFrom}>`, async (signal) => {
      const deps = this.deps(signal);
      const helo = this.facts.envelope.helo ?? '';
      const tasks: Promise<unknown>[] = [];
      if (config.spf.mailFrom) {
        tasks.push(
          this.timed('spf', checkMailFrom({ ip, mailFrom, helo }, deps)).then((r) => {
            this.facts.spfMailFrom = r;
          }),
        );
      }
      const siq = this.policy.prepared.siq;
      if (siq) {
        const subject = {
          ip,
          domain: this.facts.identity?.domain ?? '',
          mailFromDomain: domainOfAddress(mailFrom),
        };
        tasks.push(
          this.timed('siq', siq.rate(subject, { signal })).then((r) => {
            this.facts.siq = r;
          }),
        );
      }
      const domainZones = this.policy.prepared.domainZones;
      if (domainZones.length > 0) {
        const e = this.facts.envelope;
        const domains = { helo: e.helo, mailfrom: domainOfAddress(mailFrom) || undefined, id: e.id };
        tasks.push(
          this.timed(
            'dnsbl_domain',
            checkDnsbl({ domains }, deps, {
              zones: domainZones,
              ...(this.ctx.dnsblMonitor ? { monitor: this.ctx.dnsblMonitor } : {}),
              signal,
            }),
          ).then((r) => {
            this.facts.dnsbl = mergeDnsbl(this.ipDnsbl, r);
          }),
        );
      }
      await Promise.all(tasks);
    });
  }

  /** RCPT TO: per-recipient thresholds. */
  async rcpt(address: string): Promise<Verdict> {
    const rcpt = stripBrackets(argument('RCPT TO', address));
    this.facts.envelope.rcpt.push(rcpt);
    return this.stage('rcpt', `RCPT TO <${rcpt}>`, null, rcpt);
  }

  /** The message's DKIM verifier, made at its first header (DKIM off: none). */
  private verifier(): DkimVerifier | null {
    const c = this.config.dkim;
    if (!c.enabled) return null;
    this.dkim ??= new DkimVerifier(
      { resolver: this.ctx.resolver, clock: this.ctx.clock },
      {
        maxSignatures: c.maxSignatures,
        minRsaBits: c.minRsaBits,
        leadingSpaceStripped: this.options.headerLeadingSpaceStripped === true,
        encoding: this.options.encoding ?? 'utf8',
      },
    );
    return this.dkim;
  }

  /** The message's ARC verifier, made at its first header (ARC off: none). */
  private arcVerifier(): ArcVerifier | null {
    if (!this.config.arc.enabled) return null;
    this.arc ??= new ArcVerifier(
      { resolver: this.ctx.resolver, clock: this.ctx.clock },
      {
        minRsaBits: this.config.dkim.minRsaBits,
        leadingSpaceStripped: this.options.headerLeadingSpaceStripped === true,
        encoding: this.options.encoding ?? 'utf8',
      },
    );
    return this.arc;
  }

  /** One received header field (name without colon; value as received, folding kept). */
  header(name: string, value: string): void {
    this.verifier()?.header(name, value);
    this.arcVerifier()?.header(name, value);
    const key = name.trim().toLowerCase();
    if (key === 'from') this.fromValues.push(value);
    const n = (this.headerCounts.get(key) ?? 0) + 1;
    this.headerCounts.set(key, n);
    if (
      key === AUTHENTICATION_RESULTS.toLowerCase() &&
      isForgedAuthenticationResults(value, this.config.authservId)
    ) {
      this.facts.forgedAuthResults.push({
        name: name.trim(),
        occurrence: n,
        reason: `carries our authserv-id ${this.config.authservId}`,
      });
    }
  }

  /** The header block is complete: DKIM key look-ups start now, while the body streams in. */
  endOfHeaders(): void {
    this.verifier()?.endOfHeaders();
    this.arcVerifier()?.endOfHeaders();
  }

  /** A chunk of the body, in order; hashed as it comes, never buffered whole. */
  body(chunk: Uint8Array | string): void {
    this.verifier()?.body(chunk);
    this.arcVerifier()?.body(chunk);
  }

  /** End of message: DKIM results, then DMARC (which needs them), then the final verdict. */
  async endOfMessage(): Promise<Verdict> {
    const config = this.config;
    // an adapter that cannot see the message (Postfix policy delegation) passes no header fields:
    // then there is nothing for DKIM and DMARC to judge, and they do not run
    const seen = this.headerCounts.size > 0;
    const verifier = seen ? this.verifier() : null;
    const arc = seen ? this.arcVerifier() : null;
    return this.stage('eom', 'end of message', async (signal) => {
      if (!seen) return;
      const f = this.facts;
      const [dkim, arcResult] = await Promise.all([
        verifier ? this.timed('dkim', verifier.finish()) : undefined,
        arc ? this.timed('arc', arc.finish()) : undefined,
      ]);
      if (dkim) f.dkim = dkim;
      if (arcResult) f.arc = arcResult;
      if (config.dmarc.enabled) {
        f.dmarc = await this.timed(
          'dmarc',
          checkDmarc(
            {
              from: this.fromValues,
              spf: f.spfMailFrom ?? null,
              dkim: f.dkim ?? [],
              envelope: { mailFrom: f.envelope.mailFrom ?? '', helo: f.envelope.helo ?? '' },
            },
            { resolver: this.ctx.resolver, signal },
          ),
        );
      }
    });
  }

  /** RSET, a new MAIL FROM, or a new message on the same connection: forget the message's facts. */
  resetMessage(): void {
    const f = this.facts;
    delete f.envelope.mailFrom;
    f.envelope.rcpt = [];
    delete f.spfMailFrom;
    delete f.siq;
    delete f.dkim;
    delete f.dmarc;
    delete f.arc;
    this.dkim = null;
    this.arc = null;
    this.fromValues = [];
    f.forgedAuthResults = [];
    f.internalErrors = [];
    if (this.ipDnsbl) f.dnsbl = this.ipDnsbl;
    else delete f.dnsbl;
    this.headerCounts.clear();
    this.checkLocalDomains();
  }

  /** Local lists for the IP (from connect) and the identity domains known now. */
  private checkLocalDomains(): void {
    const e = this.facts.envelope;
    const list = this.policy.prepared.localList;
    const ipResult = this.facts.localList;
    const domains = list.check({
      domains: { helo: e.helo, mailfrom: e.mailFrom ? domainOfAddress(e.mailFrom) : undefined, id: e.id },
    }).domains;
    this.facts.localList = { ...(ipResult ?? { ip: 'none' }), domains };
  }
}

function mergeDnsbl(a: Facts['dnsbl'], b: NonNullable<Facts['dnsbl']>): NonNullable<Facts['dnsbl']> {
  if (!a) return b;
  return {
    score: a.score + b.score,
    listed: [...a.listed, ...b.listed],
    allowListed: [...a.allowListed, ...b.allowListed],
    errors: [...a.errors, ...b.errors],
    disabled: [...new Set([...a.disabled, ...b.disabled])],
    results: [...a.results, ...b.results],
  };
}
