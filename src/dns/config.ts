/**
 * Resolver configuration: the system's /etc/resolv.conf (the glibc subset that matters to a stub:
 * `nameserver`, `options timeout:N attempts:N rotate`) and a factory that wires a StubResolver
 * and, unless disabled, a CachingResolver in front of it.
 */
import { readFileSync } from 'node:fs';
import type { Clock } from '../common/clock.ts';
import { DNS_PORT, parseServerSpec, type ServerAddress } from './address.ts';
import { type CacheOptions, type CacheStats, CachingResolver } from './cache.ts';
import { StubResolver, type StubResolverStats } from './stub.ts';
import type { Resolver } from './types.ts';

export { formatServer, parseServerSpec, type ServerAddress } from './address.ts';

export const RESOLV_CONF = '/etc/resolv.conf';
/** glibc uses at most three name servers (MAXNS) and ignores the rest; so do we */
export const MAX_NAMESERVERS = 3;
export const DEFAULT_TIMEOUT_MS = 2000;
export const DEFAULT_ATTEMPTS = 2;
export const FALLBACK_SERVER: ServerAddress = { host: '127.0.0.1', port: DNS_PORT, family: 4 };

export interface ResolvConf {
  servers: ServerAddress[];
  /** from `options timeout:N` (seconds, capped at 30 like glibc), in ms */
  timeoutMs?: number;
  /** from `options attempts:N` (capped at 5 like glibc) */
  attempts?: number;
  rotate: boolean;
  /** lines or values we did not understand, for diagnostics */
  warnings: string[];
}

/** Parses resolv.conf text. Never throws; what it cannot use lands in `warnings`. */
export function parseResolvConf(text: string): ResolvConf {
  const conf: ResolvConf = { servers: [], rotate: false, warnings: [] };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const words = line.split(/[ \t]+/);
    const keyword = words[0]!;
    if (keyword === 'nameserver') {
      const spec = words[1];
      if (!spec) {
        conf.warnings.push(`nameserver without an address: "${line}"`);
        continue;
      }
      // resolv.conf takes an address only (no port); reject "1.2.3.4:53" forms the way glibc does
      try {
        if (spec.includes('[') || (spec.split(':').length === 2 && !spec.includes('%')))
          throw new Error('port');
        const server = parseServerSpec(spec);
        if (conf.servers.length < MAX_NAMESERVERS) conf.servers.push(server);
        else conf.warnings.push(`more than ${MAX_NAMESERVERS} name servers: "${spec}" ignored`);
      } catch {
        conf.warnings.push(`not an IP address: "${line}"`);
      }
    } else if (keyword === 'options') {
      for (const option of words.slice(1)) {
        if (option.startsWith('#') || option.startsWith(';')) break;
        const colon = option.indexOf(':');
        const name = colon < 0 ? option : option.slice(0, colon);
        const value = colon < 0 ? '' : option.slice(colon + 1);
        if (name === 'timeout' || name === 'attempts') {
          if (!/^\d+$/.test(value)) {
            conf.warnings.push(`bad option "${option}"`);
            continue;
          }
          const n = Number(value);
          if (name === 'timeout') conf.timeoutMs = Math.min(30, Math.max(1, n)) * 1000;
          else conf.attempts = Math.min(5, Math.max(1, n));
        } else if (name === 'rotate') {
          conf.rotate = true;
        }
        // ndots, edns0, trust-ad, single-request, …: not relevant to this stub
      }
    }
    // search, domain, sortlist: no search list here, names are always absolute
  }
  return conf;
}

/** Reads and parses resolv.conf; null when it cannot be read. */
export function readResolvConf(path: string = RESOLV_CONF): ResolvConf | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  return parseResolvConf(text);
}

export interface CreateResolverOptions {
  /** server specs; default: the nameservers of resolv.conf, else 127.0.0.1:53 */
  servers?: string[];
  /** per try; default: resolv.conf `timeout`, else 2000 */
  timeoutMs?: number;
  /** rounds over the servers; default: resolv.conf `attempts`, else 2 */
  attempts?: number;
  /** default 64 */
  maxInFlight?: number;
  /** default: resolv.conf `rotate` */
  rotate?: boolean;
  /** EDNS UDP payload size; default 1232, false: no EDNS */
  udpPayloadSize?: number | false;
  /** default: a cache with the CachingResolver defaults; false: none */
  cache?: Omit<CacheOptions, 'clock'> | false;
  /** wraps the stub in a shared second-level cache, under the memory cache (src/redis/dns-cache.ts) */
  secondLevel?: (stub: Resolver) => Resolver;
  clock?: Clock;
  /** default /etc/resolv.conf */
  resolvConfPath?: string;
}

export interface ResolverStats {
  stub: StubResolverStats;
  cache: CacheStats | null;
}

export interface ManagedResolver extends Resolver {
  readonly servers: readonly ServerAddress[];
  stats(): ResolverStats;
  /** settles pending queries, frees sockets and timers */
  close(): Promise<void>;
}

/** The resolver the application uses: stub + cache, configured from options then resolv.conf. */
export function createResolver(options: CreateResolverOptions = {}): ManagedResolver {
  const needConf =
    options.servers === undefined ||
    options.timeoutMs === undefined ||
    options.attempts === undefined ||
    options.rotate === undefined;
  const conf = needConf ? readResolvConf(options.resolvConfPath ?? RESOLV_CONF) : null;
  let servers: ServerAddress[];
  if (options.servers !== undefined) servers = options.servers.map((s) => parseServerSpec(s));
  else servers = conf && conf.servers.length > 0 ? conf.servers : [FALLBACK_SERVER];
  const stub = new StubResolver({
    servers,
    timeoutMs: options.timeoutMs ?? conf?.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    attempts: options.attempts ?? conf?.attempts ?? DEFAULT_ATTEMPTS,
    maxInFlight: options.maxInFlight,
    rotate: options.rotate ?? conf?.rotate ?? false,
    udpPayloadSize: options.udpPayloadSize,
  });
  const below: Resolver = options.secondLevel ? options.secondLevel(stub) : stub;
  const cache =
    options.cache === false
      ? null
      : new CachingResolver(below, { ...(options.cache ?? {}), clock: options.clock });
  const front: Resolver = cache ?? below;
  return {
    servers: stub.servers,
    query: (name, type, queryOptions) => front.query(name, type, queryOptions),
    stats: () => ({ stub: stub.stats(), cache: cache ? cache.stats() : null }),
    close: () => stub.close(),
  };
}
