/** Public types of the SPF check (RFC 7208). */
import type { Clock } from '../../common/clock.ts';
import type { Resolver } from '../../dns/types.ts';

/** The seven results of check_host() (RFC 7208 §2.6). */
export type SpfResult = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'temperror' | 'permerror';

/** Which identity was checked: MAIL FROM (§2.4, the null sender uses postmaster@HELO) or HELO (§2.3). */
export type SpfIdentity = 'mailfrom' | 'helo';

export interface SpfFact {
  result: SpfResult;
  identity: SpfIdentity;
  /** the <domain> check_host() started from (lower case), or the identity as given when invalid */
  domain: string;
  /** the <sender> used for macros: local-part@domain, "postmaster" when the local part is missing */
  sender: string;
  /** the client IP in canonical text (an IPv4-mapped IPv6 address is shown as IPv4) */
  ip: string;
  /** exp= text, only on fail, only when the record's exp= produced a valid explanation (§6.2) */
  explanation?: string;
  /** the term that decided the result as written, e.g. "-all" or "include:_spf.example.net" */
  mechanism?: string;
  /** one human sentence saying why */
  reason: string;
  /** DNS-querying terms evaluated (include, a, mx, ptr, exists, redirect; §4.6.4) */
  lookups: number;
  /** terms whose lookup answered NXDOMAIN or no records (§4.6.4) */
  voidLookups: number;
}

export interface SpfLimits {
  /** DNS-querying terms per evaluation; more is a permerror (§4.6.4: 10) */
  maxDnsLookups: number;
  /** void lookups per evaluation; more is a permerror (§4.6.4: SHOULD be 2) */
  maxVoidLookups: number;
  /** MX names one "mx" term may look up; more is a permerror (§4.6.4: 10) */
  maxMxNames: number;
  /** PTR names one "ptr" term or %{p} may validate; the rest are ignored (§4.6.4: 10) */
  maxPtrNames: number;
  /** wall-clock budget of one evaluation, after which the result is temperror (§4.6.4: ≥ 20 s) */
  maxElapsedMs: number;
}

export const DEFAULT_SPF_LIMITS: Readonly<SpfLimits> = Object.freeze({
  maxDnsLookups: 10,
  maxVoidLookups: 2,
  maxMxNames: 10,
  maxPtrNames: 10,
  maxElapsedMs: 20_000,
});

export interface SpfDeps {
  resolver: Resolver;
  /** time source for the deadline and the %{t} macro; the system clock by default */
  clock?: Clock;
  limits?: Partial<SpfLimits>;
  /** aborting it ends the evaluation early with temperror; it is passed on to every query */
  signal?: AbortSignal;
}

export interface CheckHostArgs {
  /** the SMTP client's address (IPv4, IPv6, or IPv4-mapped IPv6, which is treated as IPv4) */
  ip: string;
  /** the <domain> to authorize */
  domain: string;
  /** the <sender>, local-part@domain; used by the s, l and o macros */
  sender: string;
  /** the HELO/EHLO name for the h macro; "unknown" when absent */
  helo?: string;
  /** the receiving host's domain for the r macro (explanations only); "unknown" when absent */
  receiver?: string;
  /** reported in the fact; "mailfrom" by default */
  identity?: SpfIdentity;
}
