/**
 * Facts: what the checks found, typed per method. The session fills them in stage by stage; the
 * policy and the header renderer read them. Nothing here decides anything.
 */
import type { HeaderRemoval } from './verdict.ts';
import type { SpfFact, SpfResult } from '../checks/spf/index.ts';
import type { DnsblResult } from '../checks/dnsbl/index.ts';
import type { LocalListResult } from '../checks/locallist/index.ts';
import type { IprevResult } from '../checks/iprev/index.ts';
import type { HeloResult } from '../checks/helo/index.ts';
import type { CsaResult } from '../checks/csa/index.ts';
import type { ProviderOutcome, Rating } from '../checks/ratings/types.ts';
import type { RatingScores } from '../checks/ratings/score.ts';
import type { SiqOutcome } from '../siq/provider.ts';
import type { DkimResult } from '../checks/dkim/index.ts';
import type { DmarcResult } from '../checks/dmarc/index.ts';
import type { ArcResult } from '../checks/arc/index.ts';

export interface Envelope {
  ip: string;
  /** declared identity (the ID command); undefined when none was declared */
  id?: string;
  helo?: string;
  mailFrom?: string;
  rcpt: string[];
}

/** The identity that takes responsibility for the connection, authenticated against the IP. */
export interface IdentityFact {
  domain: string;
  source: 'id' | 'helo';
  /** checkID's method name and version, as in the Authent: header */
  method: 'SPF1';
  result: SpfResult;
  spf: SpfFact;
}

export interface RatingsFact {
  domain: string;
  status: 'found' | 'none' | 'temperror' | 'permerror';
  outcomes: ProviderOutcome[];
  ratings: Rating[];
  scores: RatingScores;
}

export interface Facts {
  envelope: Envelope;
  localList?: LocalListResult;
  dnsbl?: DnsblResult;
  iprev?: IprevResult;
  helo?: HeloResult;
  csa?: CsaResult;
  spfHelo?: SpfFact;
  spfMailFrom?: SpfFact;
  identity?: IdentityFact;
  ratings?: RatingsFact;
  /** the SIQ servers' answer about the client IP and the MAIL FROM domain */
  siq?: SiqOutcome;
  /** end of message: one result per DKIM-Signature (none → a single 'none') */
  dkim?: DkimResult[];
  /** end of message: DMARC for the RFC5322.From domain */
  dmarc?: DmarcResult;
  /** end of message: the ARC chain's validation (RFC 8617) */
  arc?: ArcResult;
  /** received Authentication-Results that carry our authserv-id */
  forgedAuthResults: HeaderRemoval[];
  /** checks that failed internally (bugs, not DNS trouble) */
  internalErrors: string[];
}

export function emptyFacts(ip: string): Facts {
  return { envelope: { ip, rcpt: [] }, forgedAuthResults: [], internalErrors: [] };
}
