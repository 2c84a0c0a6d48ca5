/**
 * Helpers for the tests that run the SIQ server as child processes (test/support/daemon.ts
 * starts them): the addresses in its "checkid listening" entry, and polling until it shows
 * something.
 */

/** The address after `label ` in a listener's address text ("udp 127.0.0.1:5000, http …"). */
export function addressOf(text: string | undefined, label: string): string {
  const m = new RegExp(`(?:^|, )${label} (\\S+?)(?:,|$)`).exec(text ?? '');
  if (!m) throw new Error(`no ${label} address in ${JSON.stringify(text)}`);
  return m[1]!;
}

/** Polls `probe` every 50 ms until it returns a value other than undefined, at most `tries` times. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  tries = 200,
): Promise<T> {
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
