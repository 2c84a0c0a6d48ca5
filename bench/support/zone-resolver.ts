/** The in-memory resolver benchmark peers share: a Zone fixture's answers, asynchronously, counted. */
import type { DnsResult, RecordType, Resolver } from '../../src/dns/types.ts';
import type { Zone } from '../../test/support/zone.ts';

export class ZoneResolver implements Resolver {
  readonly zone: Zone;
  queries = 0;
  constructor(zone: Zone) {
    this.zone = zone;
  }
  async query<T extends RecordType>(name: string, type: T): Promise<DnsResult<T>> {
    this.queries++;
    return this.zone.answer(name, type);
  }
}
