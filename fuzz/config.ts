/**
 * Fuzzes the config loader: mutated versions of a full config, and random YAML-ish text. Every
 * input must either load or throw a ConfigError whose problems each name the file and a line;
 * anything else (a TypeError, a hang) is a crash.
 *
 *   node fuzz/config.ts [inputs=100000] [seed=1]
 *
 * Prints JSON {inputs, loaded, rejected, crashes, ms}; exit status 1 on any crash.
 */
import { ConfigError, parseConfig } from '../src/policy/config.ts';
import { prng } from './support/prng.ts';

export { prng };

export const SAMPLE = `authserv_id: mx.example.org
headers: [authentication-results, authent]
on_error: tempfail
deadline_ms: 15000
resolver:
  servers: ["127.0.0.1:53", "[::1]:53"]
  timeout_ms: 2000
  attempts: 2
  cache: { min_ttl: 0, max_ttl: 86400, negative_max_ttl: 3600, max_entries: 1000 }
prescreen:
  dnsbl:
    - { zone: zen.spamhaus.org, filter: "127.0.0.[2..11]", weight: 2 }
    - { zone: list.dnswl.org, weight: -2 }
  threshold: 2
  allow: [192.0.2.0/24, .example.com]
  block: ["2001:db8::/32"]
spf: { helo: true, mail_from: true, reject_fail: true }
ratings:
  registries: [{ zone: registry.example }]
  services: { S1: { grades: { A: 10, B: 5 }, weight: 3 } }
  accept: { average: 7, min: 5 }
  reject: { max: 2 }
  recipients: [{ match: ["@example.org"], accept: null }]
filter: { subject_tag: "[SPAM]" }
`;

const TOKENS = [':', ' ', '\n', '  ', '- ', '[', ']', '{', '}', ',', '"', "'", '&a', '*a', '!!str ', '~', 'null', 'true', '-1', '1e999', '0x10', '#', '\t', '---', '...', '|', '>', '?', '%YAML 1.2', 'zone', 'dnsbl', 'ratings', '\u0000', '\ud800', '<<: *a'];

export function mutate(text: string, rand: () => number): string {
  let s = text;
  const edits = 1 + Math.floor(rand() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rand() * (s.length + 1));
    const op = rand();
    if (op < 0.35) s = s.slice(0, at) + TOKENS[Math.floor(rand() * TOKENS.length)] + s.slice(at);
    else if (op < 0.6) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 20));
    else if (op < 0.8) s = s.slice(0, at) + String.fromCharCode(Math.floor(rand() * 128)) + s.slice(at + 1);
    else {
      const from = Math.floor(rand() * s.length);
      s = s.slice(0, at) + s.slice(from, from + Math.floor(rand() * 40)) + s.slice(at);
    }
  }
  return s;
}

export function fuzzOne(text: string): 'loaded' | 'rejected' {
  try {
    parseConfig(text, '/fuzz/checkid.yaml', '/fuzz');
    return 'loaded';
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) {
      if (!/^\/fuzz\/checkid\.yaml: (line \d+|cannot read)/.test(p)) throw new Error(`problem without file:line: ${p}`);
    }
    return 'rejected';
  }
}

if (import.meta.main) {
  const inputs = Number(process.argv[2] ?? 100_000);
  const rand = prng(Number(process.argv[3] ?? 1));
  const counts = { loaded: 0, rejected: 0, crashes: 0 };
  const start = performance.now();
  for (let i = 0; i < inputs; i++) {
    const text = rand() < 0.9 ? mutate(SAMPLE, rand) : Array.from({ length: Math.floor(rand() * 200) }, () => TOKENS[Math.floor(rand() * TOKENS.length)]).join('');
    try {
      counts[fuzzOne(text)]++;
    } catch (err) {
      counts.crashes++;
      if (counts.crashes <= 5) process.stderr.write(`CRASH on ${JSON.stringify(text)}: ${(err as Error).stack}\n`);
    }
  }
  process.stdout.write(`${JSON.stringify({ fuzz: 'config', inputs, ...counts, ms: Math.round(performance.now() - start) })}\n`);
  process.exitCode = counts.crashes > 0 ? 1 : 0;
}
