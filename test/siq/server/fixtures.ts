/** DNS data and helpers shared by the SIQ server tests and the benchmark. */
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { decodeReply, encodeQuery, type SiqReply } from '../../../src/siq/codec.ts';
import type { ZoneData } from '../../support/zone.ts';

/**
 * - 192.0.2.10: mail.good.example (PTR and A agree), listed on the allow list wl.test
 * - 198.51.100.7: 7-100-51-198.dyn.isp.example (agrees, but a pool name), listed on bl.test
 * - 203.0.113.5: no PTR
 * - good.example: SPF "ip4:192.0.2.10 -all", DMARC p=reject, MX
 * - weak.example: SPF "+all", DMARC p=none, an A record and no MX
 * - neutral.example: SPF "?all", MX
 * - nullmx.example: null MX, no SPF, no DMARC
 */
export function siqZone(): ZoneData {
  return {
    '10.2.0.192.in-addr.arpa': [{ PTR: 'mail.good.example' }],
    'mail.good.example': [{ A: '192.0.2.10' }],
    '7.100.51.198.in-addr.arpa': [{ PTR: '7-100-51-198.dyn.isp.example' }],
    '7-100-51-198.dyn.isp.example': [{ A: '198.51.100.7' }],
    '7.100.51.198.bl.test': [{ A: '127.0.0.2' }],
    '10.2.0.192.wl.test': [{ A: '127.0.10.3' }],
    'good.example': [{ TXT: 'v=spf1 ip4:192.0.2.10 -all' }, { MX: [10, 'mail.good.example'] }],
    '_dmarc.good.example': [{ TXT: 'v=DMARC1; p=reject' }],
    'weak.example': [{ TXT: 'v=spf1 +all' }, { A: '192.0.2.99' }],
    '_dmarc.weak.example': [{ TXT: 'v=DMARC1; p=none' }],
    'neutral.example': [{ TXT: 'v=spf1 ?all' }, { MX: [10, 'mail.good.example'] }],
    'nullmx.example': [{ MX: [0, '.'] }],
  };
}

export const ZONES = [
  { zone: 'bl.test', weight: 1 },
  { zone: 'wl.test', weight: -1 },
];

/** One raw SIQ query from a chosen local address (e.g. 127.0.0.2); null when no reply came within `waitMs`. */
export async function rawQuery(
  server: { host: string; port: number },
  from: string,
  q: { ip: string; domain: string; id?: number; patch?: (bytes: Uint8Array) => void },
  waitMs = 1000,
): Promise<SiqReply | null> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((ok) => s.bind(0, from, () => ok()));
  const id = q.id ?? (s.address() as AddressInfo).port & 0xffff;
  try {
    return await new Promise<SiqReply | null>((resolve) => {
      const t = setTimeout(() => resolve(null), waitMs);
      s.on('message', (msg) => {
        clearTimeout(t);
        resolve(decodeReply(msg));
      });
      const bytes = encodeQuery({ id, type: 'mail', ip: q.ip, domain: q.domain });
      q.patch?.(bytes);
      s.send(bytes, server.port, server.host);
    });
  } finally {
    s.close();
  }
}
