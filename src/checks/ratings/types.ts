/** Rating services: anything that grades a sender (a DNS registry zone, a SIQ server, ...). */

export interface Rating {
  /** the rating service's code, e.g. "S1" */
  service: string;
  /** a letter (A..D) or an integer of up to 3 digits */
  grade: string;
}

export interface RatingSubject {
  ip: string;
  /** the authenticated identity (declared ID or HELO domain); '' when there is none */
  domain: string;
  /** MAIL FROM domain, when known */
  mailFromDomain?: string;
}

export type RatingStatus = 'found' | 'none' | 'temperror' | 'permerror';

export interface ProviderOutcome {
  provider: string;
  status: RatingStatus;
  ratings: Rating[];
  message: string;
}

export interface RatingProvider {
  readonly name: string;
  rate(subject: RatingSubject, options?: { signal?: AbortSignal }): Promise<ProviderOutcome>;
}
