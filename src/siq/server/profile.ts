/**
 * Scoring profiles: which checks an account runs and what each outcome is worth.
 *
 * A profile is plain JSON (stored as is by the SiqServerStore, edited by the web UI, written in
 * YAML as `siq_server.default_profile`):
 *
 *   { "base": 50, "ttl": 300,
 *     "checks": { "dnsbl": { "enabled": true, "pass": 10, "fail": -60, "neutral": 0 }, ... } }
 *
 * Every key is optional: a missing one takes the server's default profile's value, whose missing
 * keys take DEFAULT_PROFILE's. `parseProfile` reads untrusted JSON with a message per problem,
 * naming the key; it never throws.
 */
import type { JsonObject } from './store.ts';

/** The checks the server can run, in the order they appear in TEXT. */
export const CHECK_IDS = [
  'local_ip',
  'local_domain',
  'dnsbl',
  'dnswl',
  'iprev',
  'generic_rdns',
  'reports_ip',
  'spf_record',
  'dmarc_record',
  'mx',
  'reports_domain',
  'spf_pass',
  'rdns_domain',
] as const;

export type CheckId = (typeof CHECK_IDS)[number];

/** Which sub-score a check feeds: IP-SCORE, DOMAIN-SCORE or REL-SCORE. */
export const CHECK_GROUP: Record<CheckId, 'ip' | 'domain' | 'rel'> = {
  local_ip: 'ip',
  local_domain: 'domain',
  dnsbl: 'ip',
  dnswl: 'ip',
  iprev: 'ip',
  generic_rdns: 'ip',
  reports_ip: 'ip',
  spf_record: 'domain',
  dmarc_record: 'domain',
  mx: 'domain',
  reports_domain: 'domain',
  spf_pass: 'rel',
  rdns_domain: 'rel',
};

/** One line per check, for the docs and the web UI. */
export const CHECK_DESCRIPTIONS: Record<CheckId, string> = {
  local_ip: "the IP is on the account's allow list (pass) or block list (fail)",
  local_domain: "the domain is on the account's allow list (pass) or block list (fail)",
  dnsbl: 'the IP is listed on a DNS block list (fail) or on none of them (pass)',
  dnswl: 'the IP is listed on a DNS allow list (pass), or not (neutral)',
  iprev: 'the IP has a reverse name that resolves back to it (pass), or not (fail)',
  generic_rdns:
    'the reverse name looks like an ISP pool name, e.g. 1-2-3-4.dsl.example.net (fail), or not (pass)',
  reports_ip:
    "gateways' reports on mail from the IP: mostly rejected (fail), mostly accepted (pass), mixed (neutral)",
  spf_record:
    'the domain publishes an SPF record ending in -all or ~all (pass), a weak one (neutral), none or a broken one (fail)',
  dmarc_record: 'the domain has a DMARC policy of quarantine or reject (pass), p=none (neutral), none (fail)',
  mx: 'the domain has MX records (pass), only an address (neutral), a null MX or does not exist (fail)',
  reports_domain:
    "gateways' reports on mail from the domain: mostly rejected (fail), mostly accepted (pass), mixed (neutral)",
  spf_pass:
    "the domain's SPF authorizes the IP (pass), fails or soft-fails it (fail), says nothing (neutral)",
  rdns_domain: "the IP's verified reverse name is in the domain (pass), or not (neutral)",
};

export interface CheckWeights {
  enabled: boolean;
  /** added to the score on each outcome; -100..100 */
  pass: number;
  fail: number;
  neutral: number;
}

export interface SiqProfile {
  /** the score before any check, and the base of each sub-score: 0..100 */
  base: number;
  /** seconds a client may cache the answer (and the server's answer cache keeps it): 0..65535, the -02 TTL field */
  ttl: number;
  checks: Record<CheckId, CheckWeights>;
}

const w = (enabled: boolean, pass: number, fail: number, neutral = 0): CheckWeights => ({
  enabled,
  pass,
  fail,
  neutral,
});

/** The built-in profile: every check on, block lists and reports weigh most. */
export const DEFAULT_PROFILE: SiqProfile = {
  base: 50,
  ttl: 300,
  checks: {
    local_ip: w(true, 100, -100),
    local_domain: w(true, 100, -100),
    dnsbl: w(true, 5, -45),
    dnswl: w(true, 20, 0),
    iprev: w(true, 10, -20),
    generic_rdns: w(true, 5, -15),
    reports_ip: w(true, 15, -30, -5),
    spf_record: w(true, 5, -10, -2),
    dmarc_record: w(true, 5, -5, 0),
    mx: w(true, 3, -15, 0),
    reports_domain: w(true, 15, -30, -5),
    spf_pass: w(true, 15, -25, -3),
    rdns_domain: w(true, 5, 0, 0),
  },
};

export interface ProfileProblem {
  /** key path inside the profile, e.g. ["checks", "dnsbl", "fail"] */
  path: Array<string | number>;
  message: string;
}

export type ProfileParse = { ok: true; profile: SiqProfile } | { ok: false; problems: ProfileProblem[] };

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function number(
  v: unknown,
  min: number,
  max: number,
  path: Array<string | number>,
  problems: ProfileProblem[],
): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || !Number.isInteger(v)) {
    problems.push({ path, message: `must be a whole number, not ${JSON.stringify(v)}` });
    return undefined;
  }
  if (v < min || v > max) {
    problems.push({ path, message: `must be ${min}..${max}, not ${v}` });
    return undefined;
  }
  return v;
}

/**
 * Reads a profile (untrusted JSON) on top of `base` (default DEFAULT_PROFILE): every problem is
 * reported with its key path; unknown keys and check names are problems too.
 */
export function parseProfile(input: unknown, base: SiqProfile = DEFAULT_PROFILE): ProfileParse {
  const problems: ProfileProblem[] = [];
  if (input === null || input === undefined) return { ok: true, profile: cloneProfile(base) };
  if (!isObject(input))
    return { ok: false, problems: [{ path: [], message: 'a profile is a mapping (JSON object)' }] };
  const out = cloneProfile(base);
  for (const key of Object.keys(input)) {
    if (key !== 'base' && key !== 'ttl' && key !== 'checks')
      problems.push({ path: [key], message: `unknown key "${key}"; known keys: base, ttl, checks` });
  }
  const b = number(input.base, 0, 100, ['base'], problems);
  if (b !== undefined) out.base = b;
  const t = number(input.ttl, 0, 65_535, ['ttl'], problems);
  if (t !== undefined) out.ttl = t;
  if (input.checks !== undefined && input.checks !== null) {
    if (!isObject(input.checks))
      problems.push({ path: ['checks'], message: 'must be a mapping of check names' });
    else {
      for (const [id, value] of Object.entries(input.checks)) {
        if (!(CHECK_IDS as readonly string[]).includes(id)) {
          problems.push({
            path: ['checks', id],
            message: `unknown check "${id}"; known checks: ${CHECK_IDS.join(', ')}`,
          });
          continue;
        }
        const check = out.checks[id as CheckId];
        if (value === null) continue;
        if (!isObject(value)) {
          problems.push({
            path: ['checks', id],
            message: 'must be a mapping with enabled, pass, fail, neutral',
          });
          continue;
        }
        for (const [k, v] of Object.entries(value)) {
          if (k === 'enabled') {
            if (typeof v === 'boolean') check.enabled = v;
            else
              problems.push({
                path: ['checks', id, k],
                message: `must be true or false, not ${JSON.stringify(v)}`,
              });
          } else if (k === 'pass' || k === 'fail' || k === 'neutral') {
            const n = number(v, -100, 100, ['checks', id, k], problems);
            if (n !== undefined) check[k] = n;
          } else {
            problems.push({
              path: ['checks', id, k],
              message: `unknown key "${k}"; known keys: enabled, pass, fail, neutral`,
            });
          }
        }
      }
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, profile: out };
}

export function cloneProfile(p: SiqProfile): SiqProfile {
  const checks = {} as Record<CheckId, CheckWeights>;
  for (const id of CHECK_IDS) checks[id] = { ...p.checks[id] };
  return { base: p.base, ttl: p.ttl, checks };
}

/** The profile as JSON (every key written out), for the store and the web UI. */
export function profileToJson(p: SiqProfile): JsonObject {
  const checks: JsonObject = {};
  for (const id of CHECK_IDS) checks[id] = { ...p.checks[id] };
  return { base: p.base, ttl: p.ttl, checks };
}

/** "checks.dnsbl.fail must be -100..100, not 300" */
export function formatProfileProblem(p: ProfileProblem): string {
  return `${p.path.length ? p.path.join('.') : 'profile'} ${p.message}`;
}
