/**
 * The SIQ web app on a real HTTP port with a memory store and a real SiqServer (its checks and
 * explain(), against a real test DNS server from test/support/dns-server.ts) for the preview.
 *
 * DNS in the zone: 192.0.2.10 is mail.sender.example (forward-confirmed), sender.example has
 * MX, SPF authorizing 192.0.2.10 with -all and DMARC p=reject; 192.0.2.66 is listed on
 * bl.example and has no reverse name; other names do not exist.
 */
import type { Server } from 'node:http';
import { ManualClock } from '../../../src/common/clock.ts';
import { createResolver, type ManagedResolver } from '../../../src/dns/config.ts';
import { defaultSiqServerConfig } from '../../../src/siq/server/config.ts';
import { SiqServer } from '../../../src/siq/server/server.ts';
import {
  createSiqWebApp,
  serverFacts,
  type SiqWebApp,
  type SiqWebOptions,
} from '../../../src/siq/server/web/app.ts';
import { MemorySiqServerStore } from '../../../src/siq/server/store-memory.ts';
import { TEST_PASSWORD_PARAMS } from '../../../src/web/password.ts';
import { type DnsTestServer, startDnsServer } from '../../support/dns-server.ts';
import { listen } from '../../web/client.ts';

export const ZONE = {
  '10.2.0.192.in-addr.arpa': [{ PTR: 'mail.sender.example' }],
  'mail.sender.example': [{ A: '192.0.2.10' }],
  'sender.example': [{ MX: [10, 'mail.sender.example'] }, { TXT: 'v=spf1 ip4:192.0.2.10 -all' }],
  '_dmarc.sender.example': [{ TXT: 'v=DMARC1; p=reject' }],
  '66.2.0.192.bl.example': [{ A: '127.0.0.2' }],
};

export interface Fixture {
  app: SiqWebApp;
  siq: SiqServer;
  store: MemorySiqServerStore;
  clock: ManualClock;
  dns: DnsTestServer;
  resolver: ManagedResolver;
  server: Server;
  base: string;
  close(): Promise<void>;
}

export async function startFixture(extra: Partial<SiqWebOptions> = {}): Promise<Fixture> {
  const dns = await startDnsServer({ zone: ZONE });
  const resolver = createResolver({ servers: [dns.address], attempts: 1, timeoutMs: 1000 });
  const store = new MemorySiqServerStore();
  const clock = new ManualClock(Date.UTC(2026, 10, 23, 12, 0, 0));
  const config = {
    ...defaultSiqServerConfig(),
    dnsbl: [{ zone: 'bl.example', type: 'ip' as const, weight: 1 }],
    checkTimeoutMs: 5000,
  };
  const siq = new SiqServer({ store, resolver, config: () => config, clock, pollMs: 0, flushMs: 50 });
  const app = createSiqWebApp({
    store,
    clock,
    passwordParams: TEST_PASSWORD_PARAMS,
    siqAddress: 'siq.example.net:6262',
    facts: serverFacts(siq),
    defaultProfile: config.defaultProfile,
    ...extra,
  });
  const { server, base } = await listen(app);
  return {
    app,
    siq,
    store,
    clock,
    dns,
    resolver,
    server,
    base,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await siq.close();
      await resolver.close();
      await dns.close();
      await store.close();
    },
  };
}
