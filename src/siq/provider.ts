/**
 * A SIQ server list as a rating service of the engine. A score (0..100) becomes the rating
 * `SIQ:<score>`, with the sub-scores the server gave as `SIQIP:`, `SIQDN:` and `SIQREL:`; the
 * other answers become statuses, and the outcome's `siq` field keeps everything the policy needs
 * to act as milter-siq did (451 on TEMPFAIL, UNKNOWN on timeout, the TEXT for a header).
 *
 * | SIQ answer                               | status      | siq.kind   |
 * |------------------------------------------|-------------|------------|
 * | SCORE 0..100                             | `found`     | `score`    |
 * | -1 UNKNOWN                               | `none`      | `unknown`  |
 * | -2 TEMPFAIL                              | `temperror` | `tempfail` |
 * | -3 REDIRECT (not followed, or unusable)  | `none`      | `redirect` |
 * | -4 ERROR, or a reserved SCORE            | `permerror` | `error`    |
 * | no usable reply before the deadline      | `temperror` | `timeout`  |
 * | nothing asked (null sender, bad domain)  | `none`      | `skipped`  |
 * | bad IP, aborted, client closed           | `temperror` | `failed`   |
 */
import type { ProviderOutcome, Rating, RatingProvider, RatingSubject } from '../checks/ratings/types.ts';
import { SiqClient, type SiqClientOptions, type SiqResult } from './client.ts';
import { formatSiqServer } from './address.ts';
import type { SiqQueryType, SiqScoreKind } from './codec.ts';

export type SiqOutcomeKind = SiqScoreKind | 'timeout' | 'skipped' | 'failed';

export interface SiqOutcome extends ProviderOutcome {
  siq: {
    kind: SiqOutcomeKind;
    /** what was asked */
    ip: string;
    domain: string;
    /** the client's result: the reply (score, sub-scores, confidence, TTL, text, layout), server, cache */
    result: SiqResult;
  };
}

export interface SiqProviderOptions {
  /** the provider's name in outcomes and logs (default "siq:" + the servers) */
  name?: string;
  /** the rating's service code (default "SIQ"); sub-scores get IP, DN and REL appended */
  service?: string;
  /** add the sub-scores (0..100 ones only) as ratings (default true) */
  subScores?: boolean;
  /** QT: 'mail' (the MAIL FROM domain, default) or 'data' */
  type?: SiqQueryType;
}

/** Printable, short, and free of CR/LF: server TEXT goes into logs and messages. */
export function safeText(text: string, max = 200): string {
  const clean = text.replace(/[\x00-\x1f\x7f-\xff]+/g, ' ').trim();
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

function subs(r: { ipScore: number; domainScore: number; relScore: number; confidence: number; ttl: number | null }): string {
  const f = (v: number): string => (v < 0 ? '-' : String(v));
  return `ip ${f(r.ipScore)}, domain ${f(r.domainScore)}, rel ${f(r.relScore)}, confidence ${f(r.confidence)}, ttl ${r.ttl === null ? '-' : r.ttl}`;
}

export class SiqRatingProvider implements RatingProvider {
  readonly name: string;
  readonly client: SiqClient;
  private readonly service: string;
  private readonly subScores: boolean;
  private readonly type: SiqQueryType;

  constructor(client: SiqClient | SiqClientOptions, options: SiqProviderOptions = {}) {
    this.client = client instanceof SiqClient ? client : new SiqClient(client);
    this.name = options.name ?? `siq:${this.client.servers.map(formatSiqServer).join(',')}`;
    this.service = options.service ?? 'SIQ';
    if (!/^[A-Za-z][A-Za-z0-9]{0,12}$/.test(this.service)) throw new Error(`bad SIQ service code "${this.service}"`);
    this.subScores = options.subScores ?? true;
    this.type = options.type ?? 'mail';
  }

  /**
   * Asks about `subject.ip` and the MAIL FROM domain (`subject.mailFromDomain`; '' is the null
   * sender). When the subject has no MAIL FROM domain field at all, the identity domain is used.
   */
  async rate(subject: RatingSubject, options?: { signal?: AbortSignal }): Promise<SiqOutcome> {
    const domain = subject.mailFromDomain !== undefined ? subject.mailFromDomain : subject.domain;
    const result = await this.client.query({ ip: subject.ip, domain, type: this.type }, options?.signal ? { signal: options.signal } : {});
    return this.outcome(subject.ip, domain, result);
  }

  /** The outcome for a client result (exported for tests and for callers that query themselves). */
  outcome(ip: string, domain: string, result: SiqResult): SiqOutcome {
    const base = { provider: this.name, ratings: [] as Rating[] };
    const who = `${ip}${domain ? ` ${domain}` : ''}`;
    switch (result.status) {
      case 'skipped':
        return { ...base, status: 'none', message: `SIQ not asked about ${who}: ${result.reason}`, siq: { kind: 'skipped', ip, domain, result } };
      case 'timeout':
        return { ...base, status: 'temperror', message: result.message, siq: { kind: 'timeout', ip, domain, result } };
      case 'error':
        return { ...base, status: 'temperror', message: `SIQ query about ${who} failed: ${result.message}`, siq: { kind: 'failed', ip, domain, result } };
    }
    const r = result.reply;
    const from = `${result.server}${result.cached ? ' (cached)' : ''}${result.redirectedFrom ? ` (redirected by ${result.redirectedFrom})` : ''}`;
    const text = safeText(r.text);
    const quoted = text ? ` '${text}'` : '';
    const siq = { kind: r.kind, ip, domain, result };
    switch (r.kind) {
      case 'score': {
        const ratings: Rating[] = [{ service: this.service, grade: String(r.score) }];
        if (this.subScores) {
          if (r.ipScore >= 0) ratings.push({ service: `${this.service}IP`, grade: String(r.ipScore) });
          if (r.domainScore >= 0) ratings.push({ service: `${this.service}DN`, grade: String(r.domainScore) });
          if (r.relScore >= 0) ratings.push({ service: `${this.service}REL`, grade: String(r.relScore) });
        }
        return { ...base, status: 'found', ratings, message: `SIQ ${from}: ${who} score ${r.score} (${subs(r)}, -${r.revision})${quoted}`, siq };
      }
      case 'unknown':
        return { ...base, status: 'none', message: `SIQ ${from}: ${who} UNKNOWN (-1)${quoted}`, siq };
      case 'tempfail':
        return { ...base, status: 'temperror', message: `SIQ ${from}: ${who} TEMPFAIL (-2)${quoted}`, siq };
      case 'redirect':
        return { ...base, status: 'none', message: `SIQ ${from}: ${who} REDIRECT (-3) not followed${quoted}`, siq };
      default:
        return {
          ...base,
          status: 'permerror',
          message: `SIQ ${from}: ${who} ${r.score === -4 ? 'ERROR (-4)' : `reserved score ${r.score}`}${quoted}`,
          siq,
        };
    }
  }
}
