/**
 * Runs the test DNS server (test/support/dns-server.ts) as its own process:
 *
 *   node scripts/dns-server.ts --zone FILE.yaml [--listen 127.0.0.1:5353] [--ttl 300]
 *
 * FILE.yaml holds zone data in the RFC 7208 suite's `zonedata` form: either a mapping of names to
 * record lists, or documents with a `zonedata:` key (several documents are merged). A file named
 * *.json is read with JSON.parse (much faster for big generated zones). Port 0 picks a free port. Once listening it prints one JSON line {"listening":"host:port"}; on SIGINT or
 * SIGTERM it prints {"stats":{...}} and exits.
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { startDnsServer } from '../test/support/dns-server.ts';
import type { ZoneData } from '../test/support/zone.ts';

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: node scripts/dns-server.ts --zone FILE.yaml [--listen HOST:PORT] [--ttl N]\n`,
  );
  process.exit(2);
}

function parseArgs(argv: string[]): { zone: string; host: string; port: number; ttl: number | undefined } {
  let zone = '';
  let listen = '127.0.0.1:5353';
  let ttl: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === '--zone' && value) zone = value;
    else if (arg === '--listen' && value) listen = value;
    else if (arg === '--ttl' && value) ttl = Number(value);
    else usage(`unknown or incomplete argument: ${arg}`);
    i++;
  }
  if (!zone) usage('--zone is required');
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(listen) ?? /^([^:]+):(\d+)$/.exec(listen);
  if (!m) usage(`bad --listen ${listen}`);
  const port = Number(m[2]);
  if (port > 65535) usage(`bad port in --listen ${listen}`);
  if (ttl !== undefined && !(ttl >= 0)) usage('bad --ttl');
  return { zone, host: m[1]!, port, ttl };
}

function loadZone(path: string): ZoneData {
  const data: ZoneData = {};
  const text = readFileSync(path, 'utf8');
  let docs: unknown[];
  if (path.endsWith('.json')) {
    try {
      docs = [JSON.parse(text)];
    } catch (err) {
      usage(`${path}: ${(err as Error).message}`);
    }
  } else {
    docs = parseAllDocuments(text).map((doc) => {
      if (doc.errors.length > 0) usage(`${path}: ${doc.errors[0]!.message}`);
      return doc.toJS();
    });
  }
  for (const value of docs) {
    if (!value || typeof value !== 'object') continue;
    const zonedata = 'zonedata' in value ? (value.zonedata as ZoneData | null) : (value as ZoneData);
    Object.assign(data, zonedata ?? {});
  }
  return data;
}

const args = parseArgs(process.argv.slice(2));
const server = await startDnsServer({
  zone: loadZone(args.zone),
  host: args.host,
  port: args.port,
  ttl: args.ttl,
});
process.stdout.write(`${JSON.stringify({ listening: server.address })}\n`);

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await server.close();
  process.stdout.write(`${JSON.stringify({ stats: server.stats })}\n`);
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
