/** Public types of the DMARC check (RFC 9989, with RFC 7489's pct= kept as an option). */
import type { Resolver } from '../../dns/types.ts';

/** The dmarc= result codes of RFC 9989 §9.2 (RFC 8601 Authentication-Results). */
export type DmarcResultCode = 'pass' | 'fail' | 'none' | 'temperror' | 'permerror';

/** A Domain Owner Assessment Policy (p=, sp=, np=) and the disposition values. */
export type DmarcPolicy = 'none' | 'quarantine' | 'reject';

export type AlignmentMode = 'r' | 's';

/** psd= (RFC 9989 §4.7): y = a Public Suffix Domain, n = an Organizational Domain, u = unknown. */
export type PsdFlag = 'y' | 'n' | 'u';

/** A parsed v=DMARC1 record. Syntax errors after v= are dropped in favour of defaults (§4.8). */
export interface DmarcRecord {
  /** the record as published, character-strings joined (§4.5) */
  text: string;
  /** p=; null when absent or not a valid value */
  p: DmarcPolicy | null;
  /** sp=; null when absent or invalid */
  sp: DmarcPolicy | null;
  /** np=; null when absent or invalid */
  np: DmarcPolicy | null;
  /** p= is present but its value is not none/quarantine/reject */
  pInvalid: boolean;
  /** sp= is present but invalid */
  spInvalid: boolean;
  /** np= is present but invalid */
  npInvalid: boolean;
  adkim: AlignmentMode;
  aspf: AlignmentMode;
  /** pct= (RFC 7489 §6.3; historic in RFC 9989): 0-100, 100 when absent or invalid */
  pct: number;
  /** t=y (RFC 9989 testing mode) */
  t: boolean;
  psd: PsdFlag;
  /** rua= URIs as written (kept, unused by the check) */
  rua: string[];
  /** ruf= URIs as written (kept, unused by the check) */
  ruf: string[];
  /** fo= as written, or null */
  fo: string | null;
  /** every tag as written, lower-case names, first occurrence only, v first */
  tags: Array<[string, string]>;
  /** what was ignored and why (unknown tags are not problems) */
  problems: string[];
}

export type DmarcRecordParse = { ok: true; record: DmarcRecord } | { ok: false; error: string };

/** One mailbox of a From field (RFC 5322 §3.4). */
export interface Mailbox {
  /** the display name with quoting and comments removed; '' when none */
  displayName: string;
  /** local-part as written (quoted-string unquoted) */
  localPart: string;
  /** the domain as written (without CFWS); a domain-literal keeps its brackets */
  domain: string;
  /** the group it was listed in (RFC 6854), if any */
  group?: string;
}

export type AuthorProblem =
  /** no From header field at all */
  | 'absent'
  /** more than one From header field (RFC 5322 §3.6 allows one) */
  | 'multiple-fields'
  /** a From field is not a valid address list */
  | 'syntax'
  /** the From field(s) hold no mailbox (e.g. an empty group) */
  | 'no-address'
  /** a mailbox's domain is a literal or not a usable domain name */
  | 'invalid-domain'
  /** the mailboxes have more than one distinct domain */
  | 'multiple-domains';

/** The Author Domain(s) found in the From field(s) (RFC 9989 §5.3.1). */
export interface AuthorExtraction {
  /** how many From fields there were */
  fields: number;
  mailboxes: Mailbox[];
  /** distinct usable author domains in order: lower-case A-labels, no trailing dot */
  domains: string[];
  /** every problem found, most serious first; [] for one field with one domain */
  problems: AuthorProblem[];
  /** the parser's message for 'syntax' / 'invalid-domain' */
  detail?: string;
  /** with a syntax error: domains found by a lenient scan of the field (for 'salvage' and logs) */
  salvaged: string[];
}

/** How one authenticated identifier fared against the Author Domain. */
export interface AlignmentCheck {
  method: 'spf' | 'dkim';
  /** the authenticated (or claimed) domain, lower case */
  domain: string;
  /** the underlying result as given (pass, fail, softfail, ...) */
  result: string;
  /**
   * strict: identical to the Author Domain; relaxed: same Organizational Domain;
   * unaligned: authenticated but not aligned; unauthenticated: its result is not pass;
   * ignored: not usable for DMARC (a HELO-identity SPF result, or a domain that is not the
   * envelope's); error: its Organizational Domain could not be determined
   */
  outcome: 'strict' | 'relaxed' | 'unaligned' | 'unauthenticated' | 'ignored' | 'error';
  /** the identifier's Organizational Domain when a tree walk determined it */
  orgDomain?: string;
  note?: string;
}

export interface DmarcAlignment {
  /** an SPF-Authenticated Identifier aligns with the Author Domain */
  spf: 'pass' | 'fail';
  /** a DKIM-Authenticated Identifier aligns with the Author Domain */
  dkim: 'pass' | 'fail';
  /** the applied record's aspf= / adkim= */
  spfMode: AlignmentMode;
  dkimMode: AlignmentMode;
  /** the aligned SPF domain, if any */
  spfDomain: string | null;
  /** the first aligned DKIM d=, if any */
  dkimDomain: string | null;
  /** every identifier considered, in evaluation order */
  checks: AlignmentCheck[];
}

export interface DmarcTesting {
  /** the applied record has t=y */
  t: boolean;
  /** the applied record's pct= (100 when absent) */
  pct: number;
  /** a pct draw was made and the message fell outside the sample */
  sampledOut: boolean;
  /** the disposition is one level below the policy because of t=y or the pct sample */
  reduced: boolean;
}

export interface DmarcResult {
  result: DmarcResultCode;
  /** the Domain Owner Assessment Policy that applies: the value of the applied tag; 'none' without one */
  policy: DmarcPolicy;
  /** which tag the policy came from: p for the Author Domain's own record, sp or np for an inherited one */
  appliedPolicy: 'p' | 'sp' | 'np' | null;
  /**
   * what the Domain Owner asks the receiver to do with this message: the policy on a fail,
   * one level lower under testing (t=y, pct sampled out), and 'none' for every other result
   */
  disposition: DmarcPolicy;
  alignment: DmarcAlignment;
  /** the Author Domain evaluated (A-label, lower case); '' when none could be extracted */
  fromDomain: string;
  /** where the applied record was found: the Author Domain, its Organizational Domain or its PSD */
  policyDomain: string | null;
  /**
   * the Author Domain's Organizational Domain (RFC 9989 §4.10.2), when it was determined; it is
   * not looked up when nothing needs it (strict alignment, identical domains, no passing identifier)
   */
  orgDomain: string | null;
  /** the applied record (after the p=none substitution of §4.10.1, if any) */
  record: DmarcRecord | null;
  testing: DmarcTesting;
  /** for np=: whether the Author Domain exists (NXDOMAIN = no); undefined when not looked up */
  domainExists?: boolean;
  /** one human sentence saying why */
  reason: string;
  /** what the From field(s) held */
  author: { fields: number; domains: string[]; problems: AuthorProblem[] };
  /** with several Author Domains evaluated (§11.5): one result each; the top level is the strictest */
  perDomain?: DmarcResult[];
  /** DNS queries made for this evaluation (all author domains) */
  queries: number;
}

export interface DmarcInput {
  /** the value of every From header field of the message, in order (folding may be kept) */
  from: readonly string[];
  /**
   * The SPF result for the MAIL FROM identity (RFC 7208 §2.4; a null reverse-path means
   * postmaster@HELO). A result for the HELO identity is never used (CVE-2019-20790).
   * An SpfFact fits.
   */
  spf?: { result: string; domain: string; identity: string } | null;
  /** one result per DKIM signature; only result 'pass' authenticates its d= domain */
  dkim?: ReadonlyArray<{ result: string; domain: string }>;
  /**
   * The SMTP envelope, when known. The SPF result is then used only if its domain is the
   * reverse-path's domain (or, for a null reverse-path, the HELO name).
   */
  envelope?: { mailFrom: string; helo?: string };
}

export interface DmarcDeps {
  resolver: Resolver;
  /** uniform in [0, 1), for pct= sampling; Math.random by default */
  random?: () => number;
  /** passed on to every query */
  signal?: AbortSignal;
}

export interface DmarcOptions {
  /**
   * Several distinct Author Domains (§5.3.1 lets a receiver go on; §11.5): 'strictest' evaluates
   * each and reports the strictest outcome (the default); 'permerror' stops with permerror.
   */
  multipleAuthors?: 'strictest' | 'permerror';
  /** at most this many Author Domains are evaluated; more is a permerror (§11.5); default 5 */
  maxAuthorDomains?: number;
  /**
   * A From field that does not parse: 'permerror' (default; RFC 9989 §4.2 leaves it out of
   * scope) or 'salvage' (evaluate the domains a lenient scan finds, like several authors).
   */
  malformedFrom?: 'permerror' | 'salvage';
  /** apply RFC 7489 pct= sampling (RFC 9989 makes pct historic); default true */
  honorPct?: boolean;
  /** DNS queries the relaxed-alignment tree walks of identifiers may make per Author Domain; default 16 */
  maxAlignmentQueries?: number;
}

export const DEFAULT_MAX_AUTHOR_DOMAINS = 5;
export const DEFAULT_MAX_ALIGNMENT_QUERIES = 16;
