/** DNS and config for the front-end's tests: the seed's zone with loopback senders. */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CHECKID_BIN, seedZone, tempDir } from '../../support/fixtures.ts';
import type { ZoneData } from '../../support/zone.ts';

/**
 * The seed's DNS, with loopback senders: example.com also authorizes 127.0.0.0/8 (and keeps its
 * ratings), example.net does not (so "ID example.net" from 127.0.0.1 is the seed's forgery), and
 * unrated.example authorizes 127.0.0.0/8 without ratings (FILTER at the end of the message).
 */
export function frontZone(): ZoneData {
  return {
    ...seedZone(),
    'example.com': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 ip4:127.0.0.0/8 -all' }],
    'unrated.example': [{ TXT: 'v=spf1 ip4:127.0.0.0/8 -all' }],
  };
}

/** A config file for the checkid daemon: the seed's authserv-id and registry, only `smtp` listening. */
export function frontConfig(extra = ''): string {
  const path = join(tempDir('checkid-smtp-front-'), 'checkid.yaml');
  writeFileSync(
    path,
    [
      'authserv_id: mx.receiver.example',
      'ratings:',
      '  registries:',
      '    - zone: registry.example',
      'http:',
      "  listen: ''",
      'milter:',
      "  listen: ''",
      extra,
    ].join('\n'),
  );
  return path;
}

export interface FrontDaemon {
  child: ChildProcess;
  /** where its SMTP listener is */
  address: { host: string; port: number };
  /** its log so far (JSON lines) */
  log: string[];
}

/** Starts `checkid ARGS` (smtp or serve) and waits for the listening line that names its SMTP address. */
export async function startFrontDaemon(args: string[]): Promise<FrontDaemon> {
  const child = spawn(process.execPath, [CHECKID_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const log: string[] = [];
  const lines = createInterface({ input: child.stderr! });
  for await (const line of lines) {
    log.push(line);
    let entry: { msg?: string; smtp?: string };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
    if (entry.msg === 'checkid listening' && entry.smtp) {
      const [host, port] = entry.smtp.split(':');
      lines.on('line', (l) => log.push(l));
      return { child, address: { host: host!, port: Number(port) }, log };
    }
  }
  throw new Error(`the daemon did not start:\n${log.join('\n')}`);
}
