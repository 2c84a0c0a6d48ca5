/** DNSBL / DNSWL pre-screen (RFC 5782, postscreen-style weights) and the RFC 5782 §5 self-test. */
export {
  checkDnsbl,
  compileZones,
  parseDnsblSite,
  type CompiledZone,
  type DnsblDeps,
  type DnsblInput,
  type DnsblOptions,
  type DnsblResult,
  type DnsblStatus,
  type DnsblZoneConfig,
  type DnsblZoneHealth,
  type DnsblZoneResult,
} from './check.ts';
export { type AddressFilter, compileFilter, FilterSyntaxError } from './filter.ts';
export { errorCode } from './answer.ts';
export {
  DEFAULT_SELF_TEST_INTERVAL_MS,
  DnsblMonitor,
  type DnsblMonitorOptions,
  type SelfTestOutcome,
  selfTestNames,
  type TimerFunctions,
  type ZoneHealth,
} from './monitor.ts';
