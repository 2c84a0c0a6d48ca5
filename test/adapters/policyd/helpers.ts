/**
 * Shared by the policy, readsocket and qmail adapter tests: an engine over the seed zone plus
 * names that pass, fail or time out SPF for 127.0.0.1 (where real MTAs on loopback see their
 * clients), and a config with both header kinds.
 */
import { Engine, staticPolicy } from '../../../src/engine/engine.ts';
import type { PolicyHook } from '../../../src/policy/hook.ts';
import adapterHook from './hook.ts';
import { type Config, parseConfig } from '../../../src/policy/config.ts';
import { seedZone } from '../../support/fixtures.ts';
import { MemoryResolver, type ZoneData } from '../../support/zone.ts';

export function adapterZone(): ZoneData {
  return {
    ...seedZone(),
    // a HELO name with forward-confirmed reverse DNS and SPF for 127.0.0.1, but no ratings
    'client.adapter.example': [{ A: '127.0.0.1' }, { TXT: 'v=spf1 ip4:127.0.0.1 -all' }],
    '1.0.0.127.in-addr.arpa': [{ PTR: 'client.adapter.example' }],
    // a HELO name that is authorized and rated well: reputable, accepted at MAIL
    'good.adapter.example': [{ A: '127.0.0.1' }, { TXT: 'v=spf1 ip4:127.0.0.1 -all' }],
    'good.adapter.example.registry.example': [{ TXT: 'svc=S1:A,M2:A,H1:B mth=SPF+5' }],
    'pass.adapter.example': [{ TXT: 'v=spf1 ip4:127.0.0.1 -all' }],
    'fail.adapter.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
    'temp.adapter.example': ['TIMEOUT'],
  };
}

const HOOK = new URL('./hook.ts', import.meta.url).pathname;

/** The config the adapter tests run with (YAML, so the real daemons can load it too). */
export const ADAPTER_CONFIG_YAML = `# adapter tests: both header kinds, the seed's registry
authserv_id: mx.receiver.example
headers: [authentication-results, authent]
deadline_ms: 5000
resolver:
  timeout_ms: 300
  attempts: 1
prescreen:
  block: [192.0.2.99]
  self_test_interval_s: 0
ratings:
  registries:
    - zone: registry.example
  # a recipient who refuses even well-rated senders: a per-recipient REJECT at RCPT
  recipients:
    - match: [picky@dest.example]
      reject: { average: 100 }
milter:
  listen: ''
http:
  listen: ''
hook: ${HOOK}
`;

export function adapterConfig(mutate?: (c: Config) => void): Config {
  const config = parseConfig(ADAPTER_CONFIG_YAML, 'adapter-test.yaml');
  mutate?.(config);
  return config;
}

export function adapterEngine(options: { mutate?: (c: Config) => void; hook?: PolicyHook } = {}): Engine {
  const resolver = new MemoryResolver(adapterZone());
  return new Engine({ resolver, policy: staticPolicy(adapterConfig(options.mutate), resolver, options.hook ?? (adapterHook as PolicyHook)) });
}

/** A Postfix 3.7 request as Postfix sends it: every attribute, empty ones included. */
export function postfixRequest(attrs: Record<string, string>): Map<string, string> {
  const base: Record<string, string> = {
    request: 'smtpd_access_policy',
    protocol_state: 'RCPT',
    protocol_name: 'ESMTP',
    client_address: '127.0.0.1',
    client_name: 'localhost',
    client_port: '40000',
    reverse_client_name: 'localhost',
    server_address: '127.0.0.1',
    server_port: '25',
    helo_name: '',
    sender: '',
    recipient: '',
    recipient_count: '0',
    queue_id: '',
    instance: '1a2b.5f3c1d2e.1',
    size: '0',
    etrn_domain: '',
    stress: '',
    sasl_method: '',
    sasl_username: '',
    sasl_sender: '',
    ccert_subject: '',
    ccert_issuer: '',
    ccert_fingerprint: '',
    ccert_pubkey_fingerprint: '',
    encryption_protocol: '',
    encryption_cipher: '',
    encryption_keysize: '0',
    policy_context: '',
  };
  return new Map(Object.entries({ ...base, ...attrs }));
}
