/**
 * Loads the openspf/pyspf YAML suites (/work/shared/testdata/spf) and runs one case through our
 * public API over an in-memory Zone that follows the reference runner's conventions.
 * Shared by test/suites/spf-rfc7208.test.ts and spf-rfc4408.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { ManualClock } from '../../../src/common/clock.ts';
import { checkHelo, checkMailFrom, type SpfFact } from '../../../src/checks/spf/index.ts';
import type { Resolver } from '../../../src/dns/types.ts';
import { MemoryResolver, Zone, type ZoneData } from '../../support/zone.ts';

export const SUITE_DIR = new URL('../../../../shared/testdata/spf/', import.meta.url);

export interface SuiteCase {
  scenario: string;
  name: string;
  spec: string;
  helo: string;
  host: string;
  mailfrom: string;
  /** acceptable results */
  results: string[];
  /** expected exp= text; 'DEFAULT' means no exp= text (our default, an absent explanation) */
  explanation?: string;
  zone: Zone;
}

export function loadSuite(file: string): SuiteCase[] {
  const text = readFileSync(new URL(file, SUITE_DIR), 'utf8');
  const cases: SuiteCase[] = [];
  for (const doc of parseAllDocuments(text)) {
    if ('errors' in doc && doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
    const scenario = doc.toJS() as {
      description: string;
      tests: Record<string, Record<string, unknown>>;
      zonedata: ZoneData | null;
    };
    const zone = new Zone(scenario.zonedata ?? {});
    for (const [name, t] of Object.entries(scenario.tests)) {
      const result = t['result'];
      cases.push({
        scenario: scenario.description,
        name,
        spec: String(t['spec'] ?? ''),
        helo: String(t['helo'] ?? ''),
        host: String(t['host']),
        mailfrom: String(t['mailfrom'] ?? ''),
        results: Array.isArray(result) ? result.map(String) : [String(result)],
        ...(t['explanation'] !== undefined ? { explanation: String(t['explanation']) } : {}),
        zone,
      });
    }
  }
  return cases;
}

/** Runs a case the way the reference runner does (an empty mailfrom checks the HELO identity). */
export async function runCase(c: SuiteCase, resolver: Resolver = new MemoryResolver(c.zone)): Promise<SpfFact[]> {
  const deps = { resolver, clock: new ManualClock() };
  const facts = [await checkMailFrom({ ip: c.host, mailFrom: c.mailfrom, helo: c.helo }, deps)];
  if (c.mailfrom === '') facts.push(await checkHelo({ ip: c.host, helo: c.helo }, deps));
  return facts;
}

/**
 * Asserts every fact is acceptable for the case. `caseInsensitiveExplanation` compares the exp=
 * text ignoring case, for expectations that spell IPv6 nibbles in the case the host was written.
 */
export function assertCase(c: SuiteCase, facts: SpfFact[], caseInsensitiveExplanation = false): void {
  for (const fact of facts) {
    assert.ok(
      c.results.includes(fact.result),
      `${fact.identity}: got ${fact.result}, want ${c.results.join(' or ')} (${fact.reason})`,
    );
    if (c.explanation !== undefined) {
      if (c.explanation === 'DEFAULT') {
        assert.equal(fact.explanation, undefined, 'no exp= text expected');
      } else if (caseInsensitiveExplanation) {
        assert.equal(fact.explanation?.toLowerCase(), c.explanation.toLowerCase());
      } else {
        assert.equal(fact.explanation, c.explanation);
      }
    }
  }
}
