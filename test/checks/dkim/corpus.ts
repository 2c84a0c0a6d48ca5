/**
 * Loaders for the DKIM corpora in /work/shared/testdata (see its README): DNS data into our
 * MemoryResolver's zone form, messages as raw octets.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { ZoneData } from '../../support/zone.ts';

export const TESTDATA = new URL('../../../../shared/testdata/', import.meta.url);

export function readData(path: string): Buffer {
  return readFileSync(new URL(path, TESTDATA));
}

/** LF-only files become CRLF, as a mail server would have them on the wire. */
export function toCrlf(raw: Buffer): Buffer {
  return Buffer.from(raw.toString('latin1').replace(/(?<!\r)\n/g, '\r\n'), 'latin1');
}

/**
 * Mail::DKIM's FAKE_DNS.dat: one "<name> <TXT>" per line; NXDOMAIN, "~~Query timed out~~",
 * "~~SERVFAIL~~" and "" are special; unlisted names are NXDOMAIN.
 */
export function mailDkimZone(): ZoneData {
  const zone: ZoneData = {};
  for (const line of readData('dkim-mail-dkim/FAKE_DNS.dat').toString('latin1').split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#') || t.startsWith(';')) continue;
    const m = /^(\S+)\s+(.*)$/.exec(t);
    if (!m) continue;
    const value = m[2]!;
    if (value === 'NXDOMAIN') continue;
    if (value === '~~Query timed out~~') zone[m[1]!] = ['TIMEOUT'];
    else if (value === '~~SERVFAIL~~') zone[m[1]!] = ['SERVFAIL'];
    else zone[m[1]!] = [{ TXT: value === '""' ? '' : value }];
  }
  return zone;
}

export interface MailDkimEntry {
  file: string;
  expected: 'pass' | 'fail' | 'invalid';
  expected_strict?: string;
  upstream_skipped?: boolean;
  kind: 'dkim' | 'domainkeys';
  algs: string[];
  key_bits: Array<number | string | null>;
  rfc8301?: string;
  note?: string;
}

export function mailDkimExpected(): MailDkimEntry[] {
  return parse(readData('dkim-mail-dkim/expected.yml').toString('utf8')) as MailDkimEntry[];
}

/** dkimpy's verify-cases.yml: DNS answers (files or inline records), vectors, key-record cases. */
export interface DkimpyCases {
  dns: Record<string, { file?: string; txt?: string }>;
  verify: Array<{ file: string; expected: string; note?: string }>;
  key_records: Record<string, string>;
}

export function dkimpyCases(): DkimpyCases {
  return parse(readData('dkim-dkimpy/verify-cases.yml').toString('utf8')) as DkimpyCases;
}

export function dkimpyZone(cases: DkimpyCases): ZoneData {
  const zone: ZoneData = {};
  for (const [name, v] of Object.entries(cases.dns)) {
    const txt = v.txt ?? readData(`dkim-dkimpy/${v.file}`).toString('latin1').trim();
    zone[name] = [{ TXT: txt }];
  }
  return zone;
}

/** RFC 8463 example's dns.json: {name: {TYPE: [[string, ...], ...]}}. */
export function rfc8463Zone(): ZoneData {
  const json = JSON.parse(readData('dkim-rfc8463-mailauth/dns.json').toString('utf8')) as Record<
    string,
    Record<string, string[][]>
  >;
  const zone: ZoneData = {};
  for (const [name, types] of Object.entries(json)) {
    zone[name] = Object.entries(types).flatMap(([type, records]) =>
      records.map((strings) => ({ [type]: strings })),
    );
  }
  return zone;
}
