/**
 * The SIQ server's checks: what DNS, the account's lists and gateway reports say about one IP
 * and domain, as `SiqFacts` for `scoreQuery`. Only the checks the profile enables are run; each
 * one's DNS trouble becomes outcome 'none' with `error: true`, never an exception.
 *
 * The checks reuse checkid's own: DNSBL/DNSWL (src/checks/dnsbl), iprev and its generic-name
 * heuristic (src/checks/iprev, extended here by a few more pool-name tokens), SPF
 * (src/checks/spf: the record's presence and ending, and check_host() for the IP), DMARC policy
 * discovery (src/checks/dmarc), and the local allow/block lists (src/checks/locallist).
 */
import { type DnsblZoneConfig, checkDnsbl } from '../../checks/dnsbl/index.ts';
import { DmarcLookup, discoverPolicy } from '../../checks/dmarc/walk.ts';
import { checkIprev, genericReverseName, type IprevResult } from '../../checks/iprev/index.ts';
import type { LocalLists } from '../../checks/locallist/index.ts';
import { checkHost, parseRecord, selectRecord } from '../../checks/spf/index.ts';
import { type IpAddress, parseIp } from '../../common/ip.ts';
import { isDnsFailure, type Resolver } from '../../dns/types.ts';
import { CHECK_IDS, type CheckId, type SiqProfile } from './profile.ts';
import type { CheckFact, SiqFacts } from './score.ts';
import type { SiqReportCounts, SiqReportKind } from './store.ts';

export interface FactDeps {
  resolver: Resolver;
  /** DNS list zones: weight ≥ 0 block lists (dnsbl), weight < 0 allow lists (dnswl); 'ip' type only */
  dnsbl: readonly DnsblZoneConfig[];
  /** the account's allow/block lists */
  lists?: LocalLists | null;
  /** the account's decayed report counts */
  reports?: (kind: SiqReportKind, key: string) => Promise<SiqReportCounts>;
  /** fewer reported messages than this say nothing (default 3) */
  reportMinMessages?: number;
  /** the reported messages rejected at or above this share fail, at or below `reportPassShare` pass */
  reportFailShare?: number;
  reportPassShare?: number;
  /** aborting ends DNS work early; unfinished checks read as DNS trouble */
  signal?: AbortSignal;
}

/** More ISP pool-name words than src/checks/iprev's list, looked for in the host part of the name. */
const MORE_GENERIC_WORDS = new Set([
  'static',
  'client',
  'clients',
  'user',
  'users',
  'subscriber',
  'rev',
  'reverse',
  'unknown',
  'noname',
  'ip',
  'host',
  'hosts',
  'addr',
  'address',
  'cust',
  'node',
  'lan',
  'wan',
  'gprs',
  'lte',
  '3g',
  '4g',
  '5g',
  'bb',
  'catv',
  'fiber',
  'fibre',
]);

/**
 * Why a reverse name looks like an ISP pool name, or null. The IP embedded in the name or the
 * dynamic/dsl/cable/pool words come from src/checks/iprev; on top of that: words such as static,
 * client, user, rev, ip, host when they stand next to digits ("static-77.isp.example",
 * "host42.isp.example"), and a host part that is mostly digits.
 */
export function genericRdns(name: string, ip: IpAddress): string | null {
  const base = genericReverseName(name, ip);
  if (base) return base;
  const labels = name.toLowerCase().replace(/\.$/, '').split('.');
  if (labels.length <= 2) return null;
  const host = labels.slice(0, -2).join('.');
  const tokens = host.split(/[^a-z0-9]+/).filter((t) => t !== '');
  for (const t of tokens) {
    const m = /^([a-z]+)(\d*)$/.exec(t);
    if (m && MORE_GENERIC_WORDS.has(m[1]!) && (m[2] !== '' || /\d/.test(host)))
      return `the name contains "${m[1]}" next to digits`;
  }
  const digits = host.replace(/[^0-9]/g, '').length;
  const letters = host.replace(/[^a-z]/g, '').length;
  if (digits >= 6 && digits > 2 * letters) return 'the host part is mostly digits';
  return null;
}

const dnsTrouble = (detail: string): CheckFact => ({ outcome: 'none', detail, error: true });

function wanted(enabled: ReadonlySet<CheckId> | SiqProfile, id: CheckId): boolean {
  return enabled instanceof Set ? enabled.has(id) : (enabled as SiqProfile).checks[id].enabled;
}

/** Runs the enabled checks for `ip` (normalised) and `domain` ('' = IP only) in parallel. */
export async function gatherFacts(
  query: { ip: string; domain: string },
  enabled: ReadonlySet<CheckId> | SiqProfile,
  deps: FactDeps,
): Promise<SiqFacts> {
  const { ip, domain } = query;
  const on = (id: CheckId) => wanted(enabled, id);
  const addr = parseIp(ip);
  const facts: SiqFacts = { ip, domain, checks: {} };
  const set = (id: CheckId, fact: CheckFact) => {
    facts.checks[id] = fact;
  };
  const { resolver, signal } = deps;
  const jobs: Promise<void>[] = [];

  // local lists: no DNS
  if (on('local_ip')) {
    const m = deps.lists?.matchIp(ip) ?? null;
    set(
      'local_ip',
      m
        ? {
            outcome: m.list === 'allow' ? 'pass' : 'fail',
            detail: `${ip} matches ${m.list} list entry ${m.entry}`,
          }
        : { outcome: 'none', detail: 'on no list' },
    );
  }
  if (on('local_domain')) {
    const m = domain && deps.lists ? deps.lists.matchDomain(domain) : null;
    set(
      'local_domain',
      m
        ? {
            outcome: m.list === 'allow' ? 'pass' : 'fail',
            detail: `${domain} matches ${m.list} list entry ${m.entry}`,
          }
        : { outcome: 'none', detail: domain ? 'on no list' : 'no domain' },
    );
  }

  // DNS lists
  const blockZones = deps.dnsbl.filter((z) => (z.type ?? 'ip') === 'ip' && (z.weight ?? 1) >= 0);
  const allowZones = deps.dnsbl.filter((z) => (z.type ?? 'ip') === 'ip' && (z.weight ?? 1) < 0);
  const lists = async (id: 'dnsbl' | 'dnswl', zones: DnsblZoneConfig[]) => {
    if (zones.length === 0)
      return set(id, {
        outcome: 'none',
        detail: `no ${id === 'dnsbl' ? 'block' : 'allow'} list zones configured`,
      });
    const r = await checkDnsbl({ ip }, { resolver }, { zones, ...(signal ? { signal } : {}) });
    const hit = id === 'dnsbl' ? r.listed : r.allowListed;
    if (hit.length > 0)
      return set(id, { outcome: id === 'dnsbl' ? 'fail' : 'pass', detail: `listed on ${hit.join(', ')}` });
    const answered = r.results.filter((z) => z.status === 'listed' || z.status === 'not-listed').length;
    if (answered === 0) return set(id, dnsTrouble(`no list answered (${r.errors.join(', ')})`));
    set(id, {
      outcome: id === 'dnsbl' ? 'pass' : 'neutral',
      detail: `not listed on ${answered} of ${zones.length} zones`,
    });
  };
  if (on('dnsbl')) jobs.push(lists('dnsbl', blockZones));
  if (on('dnswl')) jobs.push(lists('dnswl', allowZones));

  // iprev, generic names and the rDNS/domain relationship share one iprev run
  let iprev: Promise<IprevResult> | undefined;
  const runIprev = () => {
    iprev ??= checkIprev({ ip }, { resolver }, signal ? { signal } : {});
    return iprev;
  };
  if (on('iprev')) {
    jobs.push(
      runIprev().then((r) => {
        if (r.result === 'pass') set('iprev', { outcome: 'pass', detail: r.reason });
        else if (r.result === 'temperror') set('iprev', dnsTrouble(r.reason));
        else set('iprev', { outcome: 'fail', detail: r.reason });
      }),
    );
  }
  if (on('generic_rdns')) {
    jobs.push(
      runIprev().then((r) => {
        const name = r.validatedName ?? r.ptrNames[0];
        if (!name || !addr)
          return set(
            'generic_rdns',
            r.result === 'temperror' ? dnsTrouble(r.reason) : { outcome: 'none', detail: 'no reverse name' },
          );
        const why = genericRdns(name, addr);
        set(
          'generic_rdns',
          why
            ? { outcome: 'fail', detail: `${name}: ${why}` }
            : { outcome: 'pass', detail: `${name} looks like a server's name` },
        );
      }),
    );
  }
  if (on('rdns_domain')) {
    if (!domain) set('rdns_domain', { outcome: 'none', detail: 'no domain' });
    else {
      jobs.push(
        runIprev().then((r) => {
          if (r.result === 'temperror') return set('rdns_domain', dnsTrouble(r.reason));
          const name = r.validatedName;
          if (!name) return set('rdns_domain', { outcome: 'neutral', detail: 'no verified reverse name' });
          const inDomain = name === domain || name.endsWith(`.${domain}`) || sameParent(name, domain);
          set(
            'rdns_domain',
            inDomain
              ? { outcome: 'pass', detail: `${name} is in ${domain}` }
              : { outcome: 'neutral', detail: `${name} is not in ${domain}` },
          );
        }),
      );
    }
  }

  // reports
  const reportFact = async (id: 'reports_ip' | 'reports_domain', kind: SiqReportKind, key: string) => {
    if (!deps.reports) return set(id, { outcome: 'none', detail: 'no reports' });
    const c = await deps.reports(kind, key);
    const total = c.accepted + c.rejected;
    const min = deps.reportMinMessages ?? 3;
    const counts = `${round1(c.accepted)} accepted, ${round1(c.rejected)} rejected`;
    if (total < min) return set(id, { outcome: 'none', detail: `too few reports (${counts})` });
    const share = c.rejected / total;
    if (share >= (deps.reportFailShare ?? 0.5)) return set(id, { outcome: 'fail', detail: counts });
    if (share <= (deps.reportPassShare ?? 0.1)) return set(id, { outcome: 'pass', detail: counts });
    set(id, { outcome: 'neutral', detail: counts });
  };
  if (on('reports_ip')) jobs.push(reportFact('reports_ip', 'ip', ip));
  if (on('reports_domain')) {
    if (domain) jobs.push(reportFact('reports_domain', 'domain', domain));
    else set('reports_domain', { outcome: 'none', detail: 'no domain' });
  }

  // the domain's records
  const noDomain: CheckFact = { outcome: 'none', detail: 'no domain' };
  if (on('spf_record')) {
    if (!domain) set('spf_record', noDomain);
    else
      jobs.push(
        resolver.query(domain, 'TXT', signal ? { signal } : undefined).then((r) => {
          if (r.status === 'nxdomain' || r.status === 'nodata')
            return set('spf_record', { outcome: 'fail', detail: `no SPF record (${r.status})` });
          if (isDnsFailure(r.status) || r.status !== 'ok')
            return set('spf_record', dnsTrouble(`TXT lookup failed (${r.status})`));
          const sel = selectRecord(r.records);
          if (sel.kind === 'none') return set('spf_record', { outcome: 'fail', detail: 'no SPF record' });
          if (sel.kind === 'multiple')
            return set('spf_record', { outcome: 'fail', detail: `${sel.count} SPF records (permerror)` });
          const parsed = parseRecord(sel.text);
          if (!parsed.ok)
            return set('spf_record', {
              outcome: 'fail',
              detail: `broken SPF record: ${parsed.error.message}`,
            });
          const all = parsed.record.mechanisms.find((m) => m.kind === 'all');
          if (all && (all.qualifier === '-' || all.qualifier === '~'))
            return set('spf_record', { outcome: 'pass', detail: `SPF record ends in ${all.text}` });
          if (!all && parsed.record.redirect)
            return set('spf_record', { outcome: 'pass', detail: 'SPF record with redirect=' });
          set('spf_record', {
            outcome: 'neutral',
            detail: all ? `weak SPF record (${all.text})` : 'SPF record without "all"',
          });
        }),
      );
  }
  if (on('dmarc_record')) {
    if (!domain) set('dmarc_record', noDomain);
    else
      jobs.push(
        discoverPolicy(domain, new DmarcLookup(resolver, signal)).then((d) => {
          if (d.status === 'temperror')
            return set('dmarc_record', dnsTrouble(`DMARC lookup failed: ${d.message}`));
          if (d.status === 'none') return set('dmarc_record', { outcome: 'fail', detail: 'no DMARC record' });
          const p = d.record.p;
          const at = d.policyDomain === domain ? '' : ` (at ${d.policyDomain})`;
          if ((p === 'reject' || p === 'quarantine') && d.record.pct > 0)
            return set('dmarc_record', { outcome: 'pass', detail: `p=${p}${at}` });
          set('dmarc_record', { outcome: 'neutral', detail: `p=${p ?? 'invalid'}${at}` });
        }),
      );
  }
  if (on('mx')) {
    if (!domain) set('mx', noDomain);
    else
      jobs.push(
        (async () => {
          const r = await resolver.query(domain, 'MX', signal ? { signal } : undefined);
          if (r.status === 'ok') {
            const real = r.records.filter((m) => m.exchange !== '');
            if (real.length > 0)
              return set('mx', {
                outcome: 'pass',
                detail: `MX ${real
                  .map((m) => m.exchange)
                  .slice(0, 3)
                  .join(', ')}`,
              });
            return set('mx', { outcome: 'fail', detail: 'null MX: the domain receives no mail (RFC 7505)' });
          }
          if (r.status === 'nxdomain')
            return set('mx', { outcome: 'fail', detail: 'the domain does not exist' });
          if (r.status !== 'nodata') return set('mx', dnsTrouble(`MX lookup failed (${r.status})`));
          const [a, aaaa] = await Promise.all([
            resolver.query(domain, 'A', signal ? { signal } : undefined),
            resolver.query(domain, 'AAAA', signal ? { signal } : undefined),
          ]);
          if (a.status === 'ok' || aaaa.status === 'ok')
            return set('mx', { outcome: 'neutral', detail: 'no MX, an address record only' });
          if (isDnsFailure(a.status) && isDnsFailure(aaaa.status))
            return set('mx', dnsTrouble(`address lookup failed (${a.status})`));
          set('mx', { outcome: 'fail', detail: 'no MX and no address record' });
        })(),
      );
  }
  if (on('spf_pass')) {
    if (!domain) set('spf_pass', noDomain);
    else
      jobs.push(
        checkHost(
          { ip, domain, sender: `postmaster@${domain}`, identity: 'mailfrom' },
          { resolver, ...(signal ? { signal } : {}) },
        ).then((f) => {
          if (f.result === 'pass')
            return set('spf_pass', { outcome: 'pass', detail: `SPF pass (${f.mechanism ?? 'record'})` });
          if (f.result === 'fail' || f.result === 'softfail')
            return set('spf_pass', {
              outcome: 'fail',
              detail: `SPF ${f.result}${f.mechanism ? ` (${f.mechanism})` : ''}`,
            });
          if (f.result === 'temperror') return set('spf_pass', dnsTrouble(`SPF temperror: ${f.reason}`));
          set('spf_pass', { outcome: 'neutral', detail: `SPF ${f.result}` });
        }),
      );
  }

  // a check that threw (a store failure behind reports, say) reads as no information
  await Promise.allSettled(jobs);
  for (const id of CHECK_IDS) {
    if (on(id) && !facts.checks[id]) set(id, { outcome: 'none', detail: 'the check failed', error: true });
  }
  return facts;
}

/** Two names under the same parent of at least two labels: mail1.example.com and example.com's sibling. */
function sameParent(name: string, domain: string): boolean {
  const parent = (n: string) => n.split('.').slice(-2).join('.');
  return (
    name.split('.').length >= 3 &&
    domain.split('.').length >= 2 &&
    parent(name) === parent(domain) &&
    !/^(co|com|org|net|ac|gov|edu)\.[a-z]{2}$/.test(parent(domain))
  );
}

const round1 = (v: number): string => (Math.round(v * 10) / 10).toString();
