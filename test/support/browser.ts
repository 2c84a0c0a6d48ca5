/**
 * Real headless Chromium for the browser tests (Debian's /usr/bin/chromium, driven by
 * playwright-core; scripts/browser/install.sh installs it and .ci/run runs that script).
 *
 * Outside CI a missing Chromium skips the test with the reason printed loudly on stderr; under
 * CI (CI=true) it does not skip, so the test runs and fails with the reason.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHECKID_CHROMIUM ?? '/usr/bin/chromium';

/** The `skip` option for a browser test: false when Chromium is there. */
export function browserSkip(): string | false {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.CI === 'true') return false;
  const reason = `headless Chromium not found at ${CHROMIUM}: run \`sudo bash scripts/browser/install.sh\``;
  process.stderr.write(`\n!!! SKIPPING browser test: ${reason}\n\n`);
  return reason;
}

/**
 * Starts headless Chromium (playwright gives it a fresh temporary profile) and the flags this closed network needs (no
 * background connections, no component updates). Close the browser in an `after` hook.
 */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`headless Chromium not found at ${CHROMIUM}: run scripts/browser/install.sh`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}
