/**
 * `checkid integrate <postfix|sendmail|exim|qmail|exchange> [--config FILE]`: prints the
 * copy-pasteable set-up for one MTA, with the addresses from the config (or the defaults). The
 * Exim and Postfix-policy parts come from the same generators the real-MTA tests run.
 */
import { parseArgs } from 'node:util';
import { eximSnippetText, eximSocket } from '../adapters/exim/config.ts';
import { postfixPolicyAddress, postfixPolicyLines } from '../adapters/policyd/postfix.ts';
import { type Config, ConfigError, defaultConfig, loadConfigFile } from '../policy/config.ts';
import { DEFAULT_QMAIL_QUEUE } from './qmail.ts';

export const MTAS = ['postfix', 'sendmail', 'exim', 'qmail', 'exchange'] as const;
export type Mta = (typeof MTAS)[number];

export const DEFAULT_POLICY_LISTEN = 'inet:127.0.0.1:9998';
export const DEFAULT_READSOCKET_LISTEN = 'inet:127.0.0.1:9997';
const DEFAULT_MILTER_LISTEN = 'inet:127.0.0.1:8891';

const REPO = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');

export interface IntegrateContext {
  config: Config;
  /** the config file to name in the printed commands */
  configPath: string;
  /** how to run checkid here: the pinned Node and bin/checkid.mjs */
  checkid: string;
}

function yaml(key: string, listen: string): string {
  return `${key}:\n  listen: ${listen}\n`;
}

/** The milter address in Sendmail's S= notation. */
export function sendmailSocket(listen: string): string {
  const unix = /^(?:unix|local):(\/.+)$/.exec(listen);
  if (unix) return `local:${unix[1]}`;
  const inet = /^inet(6?):(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (!inet) throw new Error(`milter address "${listen}": expected inet:HOST:PORT or unix:/path`);
  return `inet${inet[1]}:${inet[4]}@${inet[2] ?? inet[3]}`;
}

function serveLine(ctx: IntegrateContext): string {
  return `${ctx.checkid} serve --config ${ctx.configPath}`;
}

function postfix(ctx: IntegrateContext): string {
  const milter = ctx.config.milter.listen || DEFAULT_MILTER_LISTEN;
  const policy = ctx.config.policy.listen || DEFAULT_POLICY_LISTEN;
  return [
    '# checkid for Postfix',
    '',
    '## A. The milter (recommended: it sees the whole message and can add every header field)',
    '',
    `# ${ctx.configPath}`,
    yaml('milter', milter),
    '# /etc/postfix/main.cf',
    `smtpd_milters = ${milter}`,
    `non_smtpd_milters = ${milter}`,
    `milter_default_action = ${ctx.config.onError === 'accept' ? 'accept' : 'tempfail'}`,
    'milter_protocol = 6',
    '',
    '## B. Or policy delegation (envelope only: IP, HELO, MAIL, RCPT; docs/adapters/postfix-policy.md)',
    '',
    `# ${ctx.configPath}`,
    yaml('policy', policy),
    `# /etc/postfix/main.cf (${postfixPolicyAddress(policy)} is asked once per recipient and,`,
    `# at DATA, once per header field checkid adds: ${Math.max(1, ctx.config.headers.length)} here)`,
    ...postfixPolicyLines({ listen: policy, headers: ctx.config.headers.length }),
    '',
    '# then start checkid and reload Postfix',
    serveLine(ctx),
    'postfix reload',
    '',
  ].join('\n');
}

function sendmail(ctx: IntegrateContext): string {
  const milter = ctx.config.milter.listen || DEFAULT_MILTER_LISTEN;
  const tempfail = ctx.config.onError === 'accept' ? '' : 'T';
  return [
    '# checkid for Sendmail (the milter)',
    '',
    `# ${ctx.configPath}`,
    yaml('milter', milter),
    '# /etc/mail/sendmail.mc (F=T: tempfail while checkid is down; T=: its timeouts)',
    `INPUT_MAIL_FILTER(\`checkid', \`S=${sendmailSocket(milter)}, F=${tempfail}, T=C:10s;S:30s;R:30s;E:5m')dnl`,
    '',
    '# rebuild sendmail.cf, start checkid, restart Sendmail',
    'make -C /etc/mail   # or: m4 /etc/mail/sendmail.mc > /etc/mail/sendmail.cf',
    serveLine(ctx),
    '',
  ].join('\n');
}

function exim(ctx: IntegrateContext): string {
  const listen = ctx.config.readsocket.listen || DEFAULT_READSOCKET_LISTEN;
  return [
    '# checkid for Exim: ACLs ask checkid with readsocket expansions (docs/adapters/exim.md)',
    '',
    `# ${ctx.configPath}`,
    yaml('readsocket', listen),
    eximSnippetText({ socket: eximSocket(listen) }),
    '# then check the configuration, start checkid, restart Exim',
    'exim -bV',
    serveLine(ctx),
    '',
  ].join('\n');
}

/** The program qmail runs as QMAILQUEUE (with no arguments): sets checkid's environment, execs it. */
export function qmailWrapperScript(ctx: Pick<IntegrateContext, 'configPath' | 'checkid'> & { qmailQueue?: string }): string {
  return [
    '#!/bin/sh',
    '# checkid as QMAILQUEUE: message on fd 0, envelope on fd 1 (docs/adapters/qmail.md)',
    `CHECKID_CONFIG=${ctx.configPath}`,
    `CHECKID_QMAIL_QUEUE=${ctx.qmailQueue ?? DEFAULT_QMAIL_QUEUE}`,
    '# qmail-smtpd with the custom-error patch reads our reply text on fd 6',
    'if (: >&6) 2>/dev/null; then CHECKID_ERROR_FD=6; else CHECKID_ERROR_FD=none; fi',
    'export CHECKID_CONFIG CHECKID_QMAIL_QUEUE CHECKID_ERROR_FD',
    `exec ${ctx.checkid} qmail-queue`,
    '',
  ].join('\n');
}

function qmail(ctx: IntegrateContext): string {
  return [
    '# checkid for qmail (netqmail, notqmail): a QMAILQUEUE program (docs/adapters/qmail.md)',
    '',
    '# /var/qmail/bin/checkid-qmail-queue (chmod 755; qmail-smtpd runs it with no arguments)',
    qmailWrapperScript(ctx),
    '# /etc/tcp.smtp: run it for mail from outside only (rebuild with tcprules, as usual)',
    '127.:allow,RELAYCLIENT=""',
    ':allow,QMAILQUEUE="/var/qmail/bin/checkid-qmail-queue"',
    '',
    'tcprules /etc/tcp.smtp.cdb /etc/tcp.smtp.tmp < /etc/tcp.smtp',
    '',
    '# The wrapper runs as qmail-smtpd\'s user (qmaild): it must be able to read the config.',
    '# qmail decides once per message, after DATA: 554/451 (or our own text with the',
    '# qmail-queue custom-error patch, exit 82), and never per recipient.',
    '',
  ].join('\n');
}

function exchange(ctx: IntegrateContext): string {
  const listen = ctx.config.smtp.listen || '0.0.0.0:25';
  const relay = ctx.config.smtp.relay || 'exchange.example.org:2525';
  return [
    '# checkid for Microsoft Exchange (on-premises, or Exchange Online): checkid in front',
    '# (docs/adapters/exchange.md). Exchange loads no checkid code: checkid\'s SMTP front-end is the',
    '# MX, decides during the SMTP dialogue, and relays accepted mail to Exchange with our header',
    '# fields on it (docs/adapters/smtp-front.md).',
    '',
    `# 1. ${ctx.configPath}`,
    'smtp:',
    `  listen: ${listen}`,
    `  relay: ${relay}      # Exchange's receive connector for checkid`,
    '',
    serveLine(ctx),
    '',
    '# 2. DNS: the MX record names the checkid host.',
    '',
    '# 3a. Exchange on-premises (Exchange Management Shell): a receive connector open to the',
    '#     checkid host only; anonymous submission to accepted domains (never "Externally secured")',
    'New-ReceiveConnector -Name "From checkid" -TransportRole FrontendTransport -Usage Custom `',
    '  -Bindings 0.0.0.0:2525 -RemoteIPRanges <checkid-IP> -PermissionGroups AnonymousUsers',
    '',
    '# 3b. Or Exchange Online (Exchange Online PowerShell): relay to',
    '#     <tenant>.mail.protection.outlook.com:25 instead, accept checkid as a partner, and let',
    '#     Enhanced Filtering look past checkid to the real client',
    'New-InboundConnector -Name "From checkid" -ConnectorType Partner -SenderDomains * `',
    '  -RestrictDomainsToIPAddresses $true -SenderIPAddresses <checkid-public-IP>',
    'Set-InboundConnector -Identity "From checkid" -EFSkipLastIP $true',
    '',
  ].join('\n');
}

const PRINTERS: Record<Mta, (ctx: IntegrateContext) => string> = { postfix, sendmail, exim, qmail, exchange };

/** The set-up text for one MTA. */
export function integrationText(mta: Mta, ctx: Partial<IntegrateContext> = {}): string {
  const full: IntegrateContext = {
    config: ctx.config ?? defaultConfig(),
    configPath: ctx.configPath ?? '/etc/checkid/checkid.yaml',
    checkid: ctx.checkid ?? `${process.execPath} ${REPO}/bin/checkid.mjs`,
  };
  return PRINTERS[mta](full);
}

export async function runIntegrate(argv: string[]): Promise<number> {
  const usage = `usage: checkid integrate <${MTAS.join('|')}> [--config FILE]\n`;
  let values: { config?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true }));
  } catch (err) {
    process.stderr.write(`checkid integrate: ${(err as Error).message}\n${usage}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const mta = positionals[0] as Mta | undefined;
  if (positionals.length !== 1 || !mta || !(MTAS as readonly string[]).includes(mta)) {
    process.stderr.write(`checkid integrate: name one MTA\n${usage}`);
    return 2;
  }
  let config: Config;
  try {
    config = values.config ? loadConfigFile(values.config) : defaultConfig();
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
    process.stderr.write(`checkid integrate: configuration error:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
    return 3;
  }
  process.stdout.write(integrationText(mta, { config, ...(values.config ? { configPath: values.config } : {}) }));
  return 0;
}
