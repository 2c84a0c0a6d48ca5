// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are Exim expansions, not templates
/**
 * The Exim configuration that talks to `checkid readsocket`: generated here once, printed by
 * `checkid integrate exim`, shown in docs/adapters/exim.md and run by the real-Exim test, so all
 * three are the same text.
 */

export interface EximSnippetOptions {
  /** the readsocket address as Exim writes it: inet:HOST:PORT, inet:[IPv6]:PORT or a socket path */
  socket?: string;
  /** readsocket's timeout; keep it above checkid's deadline_ms (default 15 s) */
  timeout?: string;
  /** an Exim host list of clients not to ask about (default ":", local submissions only) */
  skipHosts?: string;
}

export interface EximSnippet {
  /** main section (before "begin acl"): macros and the ACL options */
  main: string;
  /** ACL section: the question ACL and the ACLs for connect, HELO, MAIL and the end of the connection */
  acls: string;
  /** statements for the top of your RCPT ACL (acl_smtp_rcpt) */
  rcpt: string;
  /** statements for the top of your DATA ACL (acl_smtp_data) */
  data: string;
}

/** checkid's readsocket address (config syntax) in Exim's notation. */
export function eximSocket(listen: string): string {
  const unix = /^(?:unix|local):(\/.+)$/.exec(listen);
  if (unix) return unix[1]!;
  const inet = /^(?:inet6?:)?(\[[^\]]+\]|[^:[\]]+):(\d+)$/.exec(listen);
  if (!inet) throw new Error(`readsocket address "${listen}": expected inet:HOST:PORT or unix:/path`);
  const host = inet[1]!;
  return `inet:${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${inet[2]}`;
}

/** The statements that carry out checkid's answer at a stage (after `acl = checkid STAGE`). */
function verdictStatements(stage: 'connect' | 'helo' | 'mail' | 'rcpt' | 'data'): string[] {
  const lines = [
    `  warn    acl           = checkid ${stage}`,
    '  deny    condition     = ${if eq{CHECKID_ACTION}{REJECT}}',
    '          message       = CHECKID_MESSAGE',
    '  defer   condition     = ${if eq{CHECKID_ACTION}{DEFER}}',
    '          message       = CHECKID_MESSAGE',
  ];
  // Exim allows discard only where a message is being received
  if (stage === 'mail' || stage === 'rcpt' || stage === 'data') lines.push('  discard condition     = ${if eq{CHECKID_ACTION}{DISCARD}}');
  if (stage === 'data') {
    lines.push(
      '  warn    condition     = ${if !eq{${extract{remove_header}{$acl_m_checkid}}}{}}',
      '          remove_header = ${extract{remove_header}{$acl_m_checkid}}',
      '  warn    condition     = ${if !eq{${extract{add_header}{$acl_m_checkid}}}{}}',
      '          add_header    = ${extract{add_header}{$acl_m_checkid}}',
    );
  }
  return lines;
}

export function eximSnippet(options: EximSnippetOptions = {}): EximSnippet {
  const socket = options.socket ?? 'inet:127.0.0.1:9997';
  const timeout = options.timeout ?? '30s';
  const main = [
    '# checkid: main section (docs/adapters/exim.md)',
    `CHECKID_SOCKET  = ${socket}`,
    `CHECKID_TIMEOUT = ${timeout}`,
    'CHECKID_ACTION  = ${extract{action}{$acl_m_checkid}}',
    'CHECKID_MESSAGE = ${extract{message}{$acl_m_checkid}}',
    '# clients checkid is not asked about: ":" = local submissions only; e.g. ": +relay_from_hosts"',
    `CHECKID_SKIP_HOSTS = ${options.skipHosts ?? ':'}`,
    'acl_smtp_connect = acl_checkid_connect',
    'acl_smtp_helo    = acl_checkid_helo',
    'acl_smtp_mail    = acl_checkid_mail',
    'acl_smtp_quit    = acl_checkid_quit',
    'acl_smtp_notquit = acl_checkid_quit',
    '',
  ].join('\n');
  const question = [
    '# checkid: asks about one stage ($acl_arg1); the answer lands in $acl_m_checkid.',
    '# If checkid cannot be reached the answer is DEFER (mail waits, nothing is lost).',
    '# Authenticated clients and CHECKID_SKIP_HOSTS are not asked about (CONTINUE).',
    'checkid:',
    '  warn    set acl_m_checkid = action="CONTINUE"',
    '  accept  condition     = ${if def:authenticated_id}',
    '  accept  hosts         = CHECKID_SKIP_HOSTS',
    '  warn    set acl_m_checkid = ${readsocket{CHECKID_SOCKET}\\',
    '            {stage=$acl_arg1\\nsession=$pid/$sender_host_address/$sender_host_port\\n\\',
    '             ip=$sender_host_address\\nhelo=$sender_helo_name\\nsender=$sender_address\\n\\',
    '             ${if eq{$acl_arg1}{rcpt}{recipient=$local_part@$domain\\n}}\\',
    '             ${if eq{$acl_arg1}{data}{recipients=$recipients\\nqueue_id=$message_exim_id\\n\\',
    '               headers=${base64:$message_headers_raw}\\n}}\\n}\\',
    '            {CHECKID_TIMEOUT}{}{action="DEFER" message="451 4.3.0 checkid unavailable"}}',
    '  accept',
    '',
  ];
  const acls = [
    ...question,
    'acl_checkid_connect:',
    ...verdictStatements('connect'),
    '  accept',
    '',
    'acl_checkid_helo:',
    ...verdictStatements('helo'),
    '  accept',
    '',
    'acl_checkid_mail:',
    ...verdictStatements('mail'),
    '  accept',
    '',
    '# the end of the SMTP connection: checkid forgets it',
    'acl_checkid_quit:',
    '  warn    acl           = checkid quit',
    '  accept',
    '',
  ].join('\n');
  return {
    main,
    acls,
    rcpt: `${['  # checkid: decide this recipient', ...verdictStatements('rcpt')].join('\n')}\n`,
    data: `${['  # checkid: decide the message; add and remove its header fields', ...verdictStatements('data')].join('\n')}\n`,
  };
}

/** The whole snippet with the instructions around it, as `checkid integrate exim` prints it. */
export function eximSnippetText(options: EximSnippetOptions = {}): string {
  const s = eximSnippet(options);
  return [
    '# 1. Main configuration section (before "begin acl"). If acl_smtp_connect, _helo, _mail, _quit',
    '#    or _notquit are set already, add the matching statements at the top of those ACLs instead.',
    s.main,
    '# 2. ACL section (after "begin acl"):',
    s.acls,
    '# 3. At the top of your RCPT ACL (acl_smtp_rcpt, e.g. acl_check_rcpt), after any',
    '#    "accept hosts = :" for local submissions and your relay checks:',
    s.rcpt,
    '# 4. At the top of your DATA ACL (acl_smtp_data, e.g. acl_check_data; set acl_smtp_data if unset):',
    s.data,
  ].join('\n');
}
