/** Paths and zone data shared by the engine and integration tests. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { ZoneData } from './zone.ts';

export const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
export const CHECKID_BIN = new URL('../../bin/checkid.mjs', import.meta.url).pathname;

/** test/fixtures/seed-zone.yaml: the seed examples' DNS. */
export function seedZone(): ZoneData {
  return parse(readFileSync(join(FIXTURES, 'seed-zone.yaml'), 'utf8')) as ZoneData;
}

const tempDirs: string[] = [];
process.on('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the test process exits. */
export function tempDir(prefix = 'checkid-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}
