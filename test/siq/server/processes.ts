/**
 * Helpers for the tests that run the SIQ server as child processes (test/support/daemon.ts
 * starts them): a DNS server for their checks and the daemons, stopped after the file's tests;
 * the addresses in its "checkid listening" entry; polling until it shows something.
 */
import { after, before } from 'node:test';
import { type Daemon, type DaemonOptions, startDaemon } from '../../support/daemon.ts';
import { type DnsTestServer, startDnsServer } from '../../support/dns-server.ts';
import { siqZone } from './fixtures.ts';

export interface SiqProcessTests {
  /** the DNS server on the SIQ zone (siqZone), started before the file's tests */
  readonly dns: DnsTestServer;
  /** `startDaemon`; what it starts is stopped after the file's tests, when still running */
  start(args: string[], options?: DaemonOptions): Promise<Daemon>;
}

/** Registers the `before` and `after` hooks of a file of SIQ server process tests. */
export function siqProcessTests(): SiqProcessTests {
  let dns: DnsTestServer | undefined;
  const daemons: Daemon[] = [];
  before(async () => {
    dns = await startDnsServer({ zone: siqZone() });
  });
  after(async () => {
    for (const d of daemons) await d.stop();
    await dns?.close();
  });
  return {
    get dns(): DnsTestServer {
      if (!dns) throw new Error('the DNS server is not running (it starts in a before hook)');
      return dns;
    },
    async start(args: string[], options?: DaemonOptions): Promise<Daemon> {
      const d = await startDaemon(args, options);
      daemons.push(d);
      return d;
    },
  };
}

/** The address after `label ` in a listener's address text ("udp 127.0.0.1:5000, http …"). */
export function addressOf(text: string | undefined, label: string): string {
  const m = new RegExp(`(?:^|, )${label} (\\S+?)(?:,|$)`).exec(text ?? '');
  if (!m) throw new Error(`no ${label} address in ${JSON.stringify(text)}`);
  return m[1]!;
}

/** Polls `probe` every 50 ms until it returns a value other than undefined, at most `tries` times. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  tries = 200,
): Promise<T> {
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
