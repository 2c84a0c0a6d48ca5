/**
 * The Postfix main.cf lines that use `checkid policy`: generated here once, printed by
 * `checkid integrate postfix`, shown in docs/adapters/postfix-policy.md and run by the
 * real-Postfix test, so all three are the same text.
 */

/** checkid's policy address (config syntax) in Postfix's check_policy_service notation. */
export function postfixPolicyAddress(listen: string): string {
  const unix = /^(?:unix|local):(\/.+)$/.exec(listen);
  if (unix) return `unix:${unix[1]}`;
  const inet = /^(?:inet6?:)?(\[[^\]]+\]|[^:[\]]+):(\d+)$/.exec(listen);
  if (!inet) throw new Error(`policy address "${listen}": expected inet:HOST:PORT or unix:/path`);
  const host = inet[1]!;
  return `inet:${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${inet[2]}`;
}

export interface PostfixPolicyOptions {
  /** checkid's policy.listen (default inet:127.0.0.1:9998) */
  listen?: string;
  /** how many header fields checkid adds (the config's `headers` list; default 2): one DATA request each */
  headers?: number;
}

/**
 * main.cf lines. Local and authenticated clients pass before checkid is asked; the recipient
 * restrictions ask after reject_unauth_destination (never an open relay); the DATA restrictions
 * ask once per header field, because one policy reply can PREPEND only one; END-OF-MESSAGE lets
 * checkid drop the connection's session right away instead of when it goes idle.
 */
export function postfixPolicyLines(options: PostfixPolicyOptions = {}): string[] {
  const service = `check_policy_service ${postfixPolicyAddress(options.listen ?? 'inet:127.0.0.1:9998')}`;
  const n = Math.max(1, options.headers ?? 2);
  return [
    'smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination',
    `smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination, ${service}`,
    `smtpd_data_restrictions = permit_mynetworks, permit_sasl_authenticated, ${Array.from({ length: n }, () => service).join(', ')}`,
    // the end of the message: checkid forgets the connection's session at once
    `smtpd_end_of_data_restrictions = permit_mynetworks, permit_sasl_authenticated, ${service}`,
  ];
}
