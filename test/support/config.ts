/** Config test helpers. */
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../src/policy/config.ts';

/**
 * The problems parseConfig finds in `text`, read as the file `source` (relative paths from
 * `baseDir`, default the working directory); fails the test when the text has none.
 */
export function configProblems(text: string, source = '/etc/checkid/checkid.yaml', baseDir?: string): string[] {
  try {
    parseConfig(text, source, baseDir);
  } catch (err) {
    assert.ok(err instanceof ConfigError, err as Error);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}
