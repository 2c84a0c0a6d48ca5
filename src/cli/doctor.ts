/**
 * `checkid doctor [--config FILE] [--resolver HOST:PORT]... [--postfix-config FILE]
 * [--time-url URL] [--json]`: looks for the classic mistakes of a new installation and says how to
 * fix each. Every finding is ok, warn, fail or skip (could not be checked here, and why); the exit
 * status is 1 when any fails, else 0 (2: usage, 3: configuration error). docs/operations.md.
 *
 * What it can check, and what it can't:
 *  - dns: each configured name server answers a question (the root's NS) in time;
 *  - spamhaus: Spamhaus answers its test point 2.0.0.127.zen.spamhaus.org through the resolver,
 *    not 127.255.255.x, which is how Spamhaus refuses public/open resolvers and heavy users;
 *  - ipv6: a UDP socket can connect to an IPv6 address (a route exists; no packet is sent);
 *  - socket: the milter's unix socket directory is not group/world-writable (Sendmail refuses it);
 *  - mta: Postfix's main.cf names checkid's milter (smtpd_milters) or policy server; the other
 *    MTAs are not read (`checkid integrate <mta>` prints their set-up);
 *  - clock: not before this release; the offset only against an HTTP Date header (--time-url),
 *    to the second, as there is no NTP client here.
 */
import dgram from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseMilterAddress, unsafeSocketDirectory } from '../adapters/milter/server.ts';
import { postfixPolicyAddress } from '../adapters/policyd/postfix.ts';
import { createResolver, formatServer } from '../dns/config.ts';
import type { DnsResult } from '../dns/types.ts';
import { type Config, ConfigError, defaultConfig, loadConfigFile } from '../policy/config.ts';
import { USAGE } from './usage.ts';

export type Status = 'ok' | 'warn' | 'fail' | 'skip';

export interface Finding {
  /** dns, spamhaus, ipv6, socket, mta, clock, clock-offset */
  check: string;
  status: Status;
  /** what was found, one line */
  message: string;
  /** how to fix it, one line (warn and fail) */
  fix?: string;
}

/** Spamhaus's test point: 127.0.0.2 is always listed in zen. */
export const SPAMHAUS_TEST = '2.0.0.127.zen.spamhaus.org';
/** Spamhaus's error answers (127.255.255.0/24), as documented in its DNSBL usage terms. */
const SPAMHAUS_ERRORS: Record<string, string> = {
  '127.255.255.252': 'the DNSBL name is mistyped',
  '127.255.255.254': 'queries through a public or open resolver are refused',
  '127.255.255.255': 'too many queries from this resolver',
};
/** Any global IPv6 address does: a UDP connect only looks up the route. f.root-servers.net */
export const IPV6_PROBE = '2001:500:2f::f';
/** This release's date: a system clock before it is certainly wrong. */
export const RELEASE_DATE = '2026-11-23';
export const POSTFIX_MAIN_CF = '/etc/postfix/main.cf';
export const SENDMAIL_CF = '/etc/mail/sendmail.cf';
const POSTFIX_QUEUE_DIRECTORY = '/var/spool/postfix';

const INTEGRATE = 'checkid integrate postfix|sendmail|exim|qmail|exchange';

export interface DoctorOptions {
  config: Config;
  /** the config file, named in the fixes ('' = embedded defaults) */
  configPath: string;
  /** name servers to use instead of the config's (and resolv.conf's) */
  resolverServers?: string[];
  /** Postfix's main.cf; default /etc/postfix/main.cf, skipped when that is absent */
  postfixConfig?: string;
  /** where Postfix's main.cf is looked for without postfixConfig (tests) */
  postfixDefault?: string;
  /** Sendmail's presence makes an unsafe socket directory a failure (default /etc/mail/sendmail.cf) */
  sendmailConfig?: string;
  /** an HTTP(S) URL whose Date header gives the time */
  timeUrl?: string;
  /** the IPv6 address to connect a UDP socket to (tests) */
  ipv6Probe?: string;
  /** how to connect it (tests: a failing one); resolves with an error code, or null on success */
  udp6Connect?: (address: string) => Promise<string | null>;
  /** the system clock (tests) */
  now?: () => number;
}

function integrateHint(config: { configPath: string }, mta = 'postfix'): string {
  return `checkid integrate ${mta}${config.configPath ? ` --config ${config.configPath}` : ''}`;
}

/** Runs every check; never throws for what it finds. */
export async function runDoctor(options: DoctorOptions): Promise<Finding[]> {
  const findings: Finding[] = [];
  findings.push(...(await checkDns(options)));
  findings.push(await checkIpv6(options));
  findings.push(checkSocket(options));
  findings.push(checkMta(options));
  findings.push(...(await checkClock(options)));
  return findings;
}

function resolverSettings(options: DoctorOptions) {
  const r = options.config.resolver;
  const servers = options.resolverServers && options.resolverServers.length > 0 ? options.resolverServers : r.servers;
  return { servers: servers.length > 0 ? servers : undefined, timeoutMs: r.timeoutMs, attempts: r.attempts };
}

function failureText(r: DnsResult<'A' | 'NS'>): string {
  return 'message' in r ? r.message : r.status;
}

function statusText(r: DnsResult<'A' | 'NS'>): string {
  return r.status === 'ok' ? 'NOERROR' : r.status.toUpperCase();
}

/** Each name server answers; then Spamhaus's test point through all of them. */
export async function checkDns(options: DoctorOptions): Promise<Finding[]> {
  const s = resolverSettings(options);
  // the servers checkid would use: the config's, else resolv.conf's, else 127.0.0.1
  const all = createResolver({ ...(s.servers ? { servers: s.servers } : {}), timeoutMs: s.timeoutMs, attempts: s.attempts, cache: false });
  const out: Finding[] = [];
  let answering = 0;
  try {
    const names = all.servers.map(formatServer);
    for (const server of names) {
      const one = createResolver({ servers: [server], timeoutMs: s.timeoutMs, attempts: s.attempts, cache: false, rotate: false });
      try {
        const started = performance.now();
        const r = await one.query('.', 'NS');
        const ms = Math.round(performance.now() - started);
        if (r.status === 'ok' || r.status === 'nxdomain' || r.status === 'nodata') {
          answering++;
          out.push({ check: 'dns', status: 'ok', message: `name server ${server} answers (${statusText(r)} in ${ms} ms)` });
        } else if (r.status === 'timeout') {
          out.push({
            check: 'dns',
            status: 'fail',
            message: `name server ${server} does not answer (${s.attempts} ${s.attempts === 1 ? 'try' : 'tries'} of ${s.timeoutMs} ms): every check that needs DNS will tempfail`,
            fix: 'run a local recursive resolver (unbound) and set resolver.servers: [127.0.0.1], or fix resolv.conf; a firewall may drop port 53',
          });
        } else if (r.status === 'servfail') {
          answering++;
          out.push({
            check: 'dns',
            status: 'warn',
            message: `name server ${server} answers SERVFAIL for the root zone: it cannot resolve (no upstream, or DNSSEC broken)`,
            fix: 'check that resolver (its forwarders, its DNSSEC trust anchor) or point resolver.servers at one that works',
          });
        } else if (r.status === 'error') {
          out.push({
            check: 'dns',
            status: 'fail',
            message: `name server ${server} cannot be asked: ${r.message.replace(/^\/NS: /, '')}`,
            fix: 'set resolver.servers (or resolv.conf) to a running recursive resolver',
          });
        } else {
          answering++;
          out.push({
            check: 'dns',
            status: 'fail',
            message: `name server ${server} answers ${statusText(r)}: ${failureText(r)}`,
            fix:
              r.status === 'refused'
                ? 'allow recursion for this host in that resolver (unbound: access-control), or run a local one and set resolver.servers: [127.0.0.1]'
                : 'point resolver.servers at a working recursive resolver',
          });
        }
      } finally {
        await one.close();
      }
    }
    out.push(await checkSpamhaus(options, all, names.join(', '), answering > 0));
  } finally {
    await all.close();
  }
  return out;
}

async function checkSpamhaus(options: DoctorOptions, resolver: ReturnType<typeof createResolver>, servers: string, reachable: boolean): Promise<Finding> {
  const used = options.config.prescreen.dnsbl.filter((z) => /(^|\.)spamhaus\.(org|net)$/i.test(z.zone)).map((z) => z.zone);
  const severity: Status = used.length > 0 ? 'fail' : 'warn';
  const consequence = used.length > 0 ? `${used.join(', ')} in prescreen.dnsbl will never list anyone` : 'Spamhaus zones would not work if you add them';
  if (!reachable) return { check: 'spamhaus', status: 'skip', message: `not checked: no name server answers (${servers})` };
  const r = await resolver.query(SPAMHAUS_TEST, 'A');
  if (r.status === 'ok') {
    const errors = r.records.filter((a) => a.startsWith('127.255.255.'));
    if (errors.length > 0) {
      const why = errors.map((a) => `${a} (${SPAMHAUS_ERRORS[a] ?? 'an error code'})`).join(', ');
      return {
        check: 'spamhaus',
        status: severity,
        message: `Spamhaus refuses the resolver ${servers}: ${SPAMHAUS_TEST} gives ${why}; ${consequence}`,
        fix: 'run your own recursive resolver (unbound, not forwarding to a public one) and set resolver.servers: [127.0.0.1], or use Spamhaus DQS zones with a key',
      };
    }
    if (r.records.some((a) => /^127\.0\.0\.\d+$/.test(a))) {
      return { check: 'spamhaus', status: 'ok', message: `Spamhaus answers through ${servers}: ${SPAMHAUS_TEST} is listed (${r.records.join(', ')})` };
    }
    return {
      check: 'spamhaus',
      status: 'warn',
      message: `${SPAMHAUS_TEST} gives ${r.records.join(', ')}, not a 127.0.0.x listing: something between us and Spamhaus rewrites answers`,
      fix: 'use a resolver that does not filter or redirect DNS answers (no ISP "search assist", no DNS firewall)',
    };
  }
  if (r.status === 'nxdomain' || r.status === 'nodata') {
    return {
      check: 'spamhaus',
      status: 'warn',
      message: `${SPAMHAUS_TEST} answers ${statusText(r)} through ${servers}: its test point must be listed, so the resolver is blocked or rewrites answers; ${consequence}`,
      fix: 'run your own recursive resolver and set resolver.servers: [127.0.0.1]',
    };
  }
  return {
    check: 'spamhaus',
    status: 'warn',
    message: `could not ask Spamhaus: ${SPAMHAUS_TEST} gives ${statusText(r)} (${failureText(r)})`,
    fix: 'make sure the resolver can reach the Internet (see the dns findings)',
  };
}

/** A UDP connect: the kernel looks for a route, nothing is sent. */
export function udp6Connect(address: string): Promise<string | null> {
  return new Promise((resolve) => {
    let socket: dgram.Socket;
    try {
      socket = dgram.createSocket('udp6');
    } catch (err) {
      resolve((err as NodeJS.ErrnoException).code ?? (err as Error).message);
      return;
    }
    const done = (result: string | null) => {
      socket.removeAllListeners();
      socket.on('error', () => {});
      try {
        socket.close();
      } catch {
        // already closed
      }
      resolve(result);
    };
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
    try {
      socket.connect(53, address, () => done(null));
    } catch (err) {
      done((err as NodeJS.ErrnoException).code ?? (err as Error).message);
    }
  });
}

export async function checkIpv6(options: DoctorOptions): Promise<Finding> {
  const target = options.ipv6Probe ?? IPV6_PROBE;
  const error = await (options.udp6Connect ?? udp6Connect)(target);
  if (error === null) return { check: 'ipv6', status: 'ok', message: `this host has an IPv6 route (a UDP socket connects to ${target}; no packet was sent, so a firewall could still drop traffic)` };
  return {
    check: 'ipv6',
    status: 'warn',
    message: `no IPv6 connectivity: a UDP socket cannot connect to ${target} (${error}); IPv6 clients cannot reach this host and DNS servers reachable only over IPv6 cannot be asked`,
    fix: 'give the host an IPv6 address and default route; ignore this if your MX publishes no AAAA record (checks over IPv4 are unaffected)',
  };
}

export function checkSocket(options: DoctorOptions): Finding {
  const listen = options.config.milter.listen;
  if (!listen) return { check: 'socket', status: 'skip', message: 'milter.listen is off: no milter socket' };
  let where: ReturnType<typeof parseMilterAddress>;
  try {
    where = parseMilterAddress(listen);
  } catch (err) {
    return { check: 'socket', status: 'fail', message: `milter.listen: ${(err as Error).message}`, fix: 'write it as inet:HOST:PORT or unix:/path' };
  }
  if (where.kind === 'inet') return { check: 'socket', status: 'skip', message: `the milter listens on TCP (${listen}): no socket directory to check` };
  const dir = dirname(where.path);
  if (!existsSync(dir)) {
    return {
      check: 'socket',
      status: 'warn',
      message: `the milter socket's directory ${dir} does not exist: checkid milter cannot start`,
      fix: `mkdir -m 0750 ${dir} && chown checkid:<the MTA's group> ${dir}`,
    };
  }
  const unsafe = unsafeSocketDirectory(where.path);
  if (!unsafe) return { check: 'socket', status: 'ok', message: `no group- or world-writable directory on the path of ${where.path}` };
  const sendmail = existsSync(options.sendmailConfig ?? SENDMAIL_CF);
  return {
    check: 'socket',
    status: sendmail ? 'fail' : 'warn',
    message: `${unsafe.directory} (mode 0${unsafe.mode.toString(8)}) on the path of ${where.path} is group- or world-writable: Sendmail refuses the socket ("unsafe: Group/World writable directory")${sendmail ? '' : '; Postfix does not mind'}`,
    fix: `put the socket in a 0750 directory whose parents only root may write to, e.g. unix:/run/checkid/milter.sock (${integrateHint(options, 'sendmail')})`,
  };
}

/** main.cf's parameters, with continuation lines joined and $name / ${name} expanded. */
export function parseMainCf(text: string): Map<string, string> {
  const raw = new Map<string, string>();
  let current: string | null = null;
  for (const line of text.split(/\r?\n/)) {
    if (/^\s*#/.test(line) || line.trim() === '') continue;
    if (/^\s/.test(line)) {
      if (current) raw.set(current, `${raw.get(current)} ${line.trim()}`);
      continue;
    }
    const m = /^([A-Za-z0-9_]+)\s*=\s*(.*)$/.exec(line);
    current = m ? m[1]! : null;
    if (m) raw.set(m[1]!, m[2]!.trim());
  }
  const expand = (value: string, depth: number): string =>
    depth > 10 ? value : value.replace(/\$(?:\{([A-Za-z0-9_]+)\}|\(([A-Za-z0-9_]+)\)|([A-Za-z0-9_]+))/g, (all, a, b, c) => {
      const v = raw.get(a ?? b ?? c);
      return v === undefined ? all : expand(v, depth + 1);
    });
  return new Map([...raw].map(([k, v]) => [k, expand(v, 0)]));
}

/** The addresses in a milter list: `a, b` or `{ a, option=value }` groups (Postfix 3). */
export function milterList(value: string): string[] {
  const out: string[] = [];
  const re = /\{([^}]*)\}|([^\s,{}]+)/g;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    const item = m[1] !== undefined ? (m[1].split(',')[0] ?? '').trim() : m[2]!;
    if (item) out.push(item);
  }
  return out;
}

/** Postfix's milter address `postfix` reaches checkid listening on `listen`. */
export function sameMilter(postfix: string, listen: string): boolean {
  let ours: ReturnType<typeof parseMilterAddress>;
  try {
    ours = parseMilterAddress(listen);
  } catch {
    return false;
  }
  const unix = /^unix:(.+)$/.exec(postfix);
  if (unix) {
    if (ours.kind !== 'unix') return false;
    const path = unix[1]!;
    // a chrooted smtpd sees its socket paths below the queue directory; relative ones are too
    const candidates = isAbsolute(path) ? [path, join(POSTFIX_QUEUE_DIRECTORY, path)] : [join(POSTFIX_QUEUE_DIRECTORY, path)];
    return candidates.includes(ours.path);
  }
  let theirs: ReturnType<typeof parseMilterAddress>;
  try {
    theirs = parseMilterAddress(postfix);
  } catch {
    return false;
  }
  if (theirs.kind !== 'inet' || ours.kind !== 'inet' || theirs.port !== ours.port) return false;
  const local = (h: string) => h === 'localhost' || h === '127.0.0.1' || h === '::1';
  return theirs.host === ours.host || ours.host === '0.0.0.0' || ours.host === '::' || (local(theirs.host) && local(ours.host));
}

export function checkMta(options: DoctorOptions): Finding {
  const path = options.postfixConfig ?? options.postfixDefault ?? POSTFIX_MAIN_CF;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (options.postfixConfig === undefined && (err as NodeJS.ErrnoException).code === 'ENOENT') {
      return { check: 'mta', status: 'skip', message: `no Postfix here (${path} is absent); Sendmail, Exim, qmail and Exchange set-ups are not read: compare with ${INTEGRATE}` };
    }
    return { check: 'mta', status: 'fail', message: `cannot read ${path}: ${(err as Error).message}`, fix: 'give --postfix-config the path of main.cf, readable by this user' };
  }
  const c = options.config;
  const cf = parseMainCf(text);
  const milters = milterList(cf.get('smtpd_milters') ?? '');
  if (c.milter.listen && milters.some((m) => sameMilter(m, c.milter.listen))) {
    return { check: 'mta', status: 'ok', message: `Postfix (${path}) asks checkid's milter: smtpd_milters = ${cf.get('smtpd_milters')}` };
  }
  if (c.policy.listen) {
    let service = '';
    try {
      service = `check_policy_service ${postfixPolicyAddress(c.policy.listen)}`;
    } catch {
      // a bad policy.listen is the config check's business
    }
    const restrictions = [...cf].filter(([k]) => /^smtpd_\w+_restrictions$/.test(k)).map(([, v]) => v.replace(/[\s,]+/g, ' '));
    if (service && restrictions.some((v) => v.includes(service))) {
      return { check: 'mta', status: 'ok', message: `Postfix (${path}) asks checkid's policy server: ${service}` };
    }
  }
  if (!c.milter.listen && !c.policy.listen) {
    return {
      check: 'mta',
      status: 'warn',
      message: 'checkid has neither milter.listen nor policy.listen set: Postfix has nothing to ask',
      fix: `set milter.listen (e.g. inet:127.0.0.1:8891) and follow ${integrateHint(options)}`,
    };
  }
  const have = milters.length > 0 ? `smtpd_milters = ${milters.join(', ')}` : 'no smtpd_milters';
  const want = c.milter.listen ? `checkid's milter listens on ${c.milter.listen}` : `checkid's policy server listens on ${c.policy.listen}`;
  return {
    check: 'mta',
    status: 'fail',
    message: `Postfix (${path}) does not ask checkid: ${have}, but ${want}`,
    fix: `${c.milter.listen ? `add smtpd_milters = ${c.milter.listen} to main.cf` : `add check_policy_service ${c.policy.listen} to smtpd_recipient_restrictions`} and run postfix reload; ${integrateHint(options)} prints the whole set-up`,
  };
}

/** The local clock against the release date and, given a URL, an HTTP Date header. */
export async function checkClock(options: DoctorOptions): Promise<Finding[]> {
  const now = options.now ?? Date.now;
  const out: Finding[] = [];
  const release = Date.parse(`${RELEASE_DATE}T00:00:00Z`);
  const local = now();
  if (local < release) {
    out.push({
      check: 'clock',
      status: 'fail',
      message: `the system clock says ${new Date(local).toISOString()}, before this checkid was released (${RELEASE_DATE}): DKIM signature times, DNS cache expiry and log times are wrong`,
      fix: 'set the time and keep it set: timedatectl set-ntp true (or run chrony/ntpd)',
    });
  } else {
    out.push({ check: 'clock', status: 'ok', message: `the system clock (${new Date(local).toISOString()}) is after this release (${RELEASE_DATE}); that is a lower bound only` });
  }
  if (!options.timeUrl) {
    out.push({
      check: 'clock-offset',
      status: 'skip',
      message: 'offset not measured: there is no NTP client here; give --time-url with an HTTP server whose clock you trust, or look at timedatectl / chronyc tracking',
    });
    return out;
  }
  try {
    const before = now();
    const res = await fetch(options.timeUrl, { method: 'HEAD', redirect: 'manual', signal: AbortSignal.timeout(5000) });
    const after = now();
    await res.arrayBuffer().catch(() => undefined);
    const header = res.headers.get('date');
    const theirs = header ? Date.parse(header) : Number.NaN;
    if (!Number.isFinite(theirs)) {
      out.push({ check: 'clock-offset', status: 'warn', message: `${options.timeUrl} sent no usable Date header (${header ?? 'none'})`, fix: 'give --time-url a server that sends Date (any ordinary web server)' });
      return out;
    }
    // the Date header has whole seconds (the server's clock was in [theirs, theirs + 1 s)): the
    // offset is known to the second at best
    const offset = theirs - (before + after) / 2;
    const seconds = Math.round(Math.abs(offset) / 1000);
    const text = `the system clock is ${seconds} s ${offset > 0 ? 'behind' : 'ahead of'} ${options.timeUrl} (its Date header, to the second; round trip ${Math.round(after - before)} ms)`;
    const abs = Math.abs(offset);
    if (abs <= 5000) out.push({ check: 'clock-offset', status: 'ok', message: text });
    else out.push({ check: 'clock-offset', status: abs <= 120_000 ? 'warn' : 'fail', message: text, fix: 'synchronise the clock: timedatectl set-ntp true (or run chrony/ntpd)' });
  } catch (err) {
    out.push({ check: 'clock-offset', status: 'warn', message: `could not read the time from ${options.timeUrl}: ${(err as Error).message}`, fix: 'check the URL, or leave --time-url out' });
  }
  return out;
}

const LABEL: Record<Status, string> = { ok: 'ok', warn: 'warn', fail: 'FAIL', skip: 'skip' };

/** The findings for a terminal: one line each, the fix indented below. */
export function formatFindings(findings: Finding[], header: string): string {
  const lines = [header, ''];
  const width = Math.max(...findings.map((f) => f.check.length));
  for (const f of findings) {
    lines.push(`${LABEL[f.status].padEnd(5)} ${f.check.padEnd(width)}  ${f.message}`);
    if (f.fix) lines.push(`${' '.repeat(5 + width + 3)}fix: ${f.fix}`);
  }
  const count = (s: Status) => findings.filter((f) => f.status === s).length;
  lines.push('', `${count('fail')} failed, ${count('warn')} warning(s), ${count('ok')} ok, ${count('skip')} not checked.`);
  lines.push(`MTA set-up: ${INTEGRATE} [--config FILE] prints what to add to your MTA.`);
  return `${lines.join('\n')}\n`;
}

const OPTIONS = {
  config: { type: 'string' },
  resolver: { type: 'string', multiple: true },
  'postfix-config': { type: 'string' },
  'time-url': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function runDoctorCommand(argv: string[]): Promise<number> {
  let values: { config?: string; resolver?: string[]; 'postfix-config'?: string; 'time-url'?: string; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: false }));
    if (values['time-url'] && !/^https?:\/\//.test(values['time-url'])) throw new Error('--time-url must be an http:// or https:// URL');
  } catch (err) {
    process.stderr.write(`checkid doctor: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let config: Config;
  try {
    config = values.config ? loadConfigFile(values.config) : defaultConfig();
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
    process.stderr.write(`checkid doctor: configuration error:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
    return 3;
  }
  const findings = await runDoctor({
    config,
    configPath: values.config ?? '',
    ...(values.resolver ? { resolverServers: values.resolver } : {}),
    ...(values['postfix-config'] ? { postfixConfig: values['postfix-config'] } : {}),
    ...(values['time-url'] ? { timeUrl: values['time-url'] } : {}),
  });
  const failed = findings.some((f) => f.status === 'fail');
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ ok: !failed, findings, integrate: `${INTEGRATE} [--config FILE]` }, null, 2)}\n`);
  } else {
    process.stdout.write(formatFindings(findings, `checkid doctor (config: ${values.config ?? 'embedded defaults'})`));
  }
  return failed ? 1 : 0;
}
