/** Paths and zone data shared by the engine and integration tests. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { ZoneData } from './zone.ts';

export const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
export const CHECKID_BIN = new URL('../../bin/checkid.mjs', import.meta.url).pathname;

/** test/fixtures/seed-zone.yaml: the seed examples' DNS. */
export function seedZone(): ZoneData {
  return parse(readFileSync(join(FIXTURES, 'seed-zone.yaml'), 'utf8')) as ZoneData;
}
