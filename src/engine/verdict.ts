/** What the policy hands back to an adapter at each stage. */

export const ACTIONS = ['ACCEPT', 'REJECT', 'FILTER', 'CONTINUE', 'TEMPFAIL', 'DISCARD'] as const;
export type Action = (typeof ACTIONS)[number];

/** An SMTP reply: basic code, enhanced status code (RFC 3463; '' when none), text. */
export interface SmtpReply {
  code: number;
  xcode: string;
  text: string;
}

/** A header field to prepend: label includes the colon, as in the seed ("Authent:"). */
export interface HeaderField {
  label: string;
  text: string;
}

/** A header field the adapter must delete: the n-th (1-based) occurrence of `name` as received. */
export interface HeaderRemoval {
  name: string;
  occurrence: number;
  reason: string;
}

export type Stage = 'connect' | 'helo' | 'id' | 'mail' | 'rcpt' | 'data' | 'eom';

export interface Verdict {
  action: Action;
  reply: SmtpReply;
  /** prepended in list order: headers[0] directly above the received header block */
  headers: HeaderField[];
  removeHeaders: HeaderRemoval[];
  /** a subject prefix the adapter adds (FILTER), e.g. "[SPAM]" */
  subjectTag?: string;
  stage: Stage;
  /** a short machine-readable reason, e.g. "identity-spf-fail", "dnsbl", "reputable" */
  reason: string;
  /** human sentences: why the policy decided this */
  explanation: string[];
}

export function isFinal(action: Action): boolean {
  return action !== 'CONTINUE';
}
