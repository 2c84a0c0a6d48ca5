/**
 * A checkid listener daemon as deployed (`checkid policy|readsocket --listen ... --config ...
 * --resolver ...`), as a child process of the test; its address is read from its
 * "checkid listening" log line, so it can listen on port 0.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHECKID_BIN, tempDir } from '../../support/fixtures.ts';
import { type Child, spawnChild, waitUntil } from '../../support/lab/lab.ts';
import { ADAPTER_CONFIG_YAML } from './helpers.ts';

export interface Daemon {
  /** as logged, e.g. inet:127.0.0.1:40123 */
  address: string;
  port: number;
  child: Child;
  configPath: string;
  /** the daemon's JSON log lines so far */
  log(): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

export async function startDaemon(command: 'policy' | 'readsocket', options: { resolver: string; listen?: string; configExtra?: string }): Promise<Daemon> {
  const configPath = join(tempDir(`checkid-${command}-`), 'checkid.yaml');
  writeFileSync(configPath, `${ADAPTER_CONFIG_YAML}${options.configExtra ?? ''}`);
  // debug: the tests read the per-request 'policy answer' / 'readsocket answer' entries
  const child = spawnChild(process.execPath, [CHECKID_BIN, command, '--listen', options.listen ?? 'inet:127.0.0.1:0', '--config', configPath, '--resolver', options.resolver], {
    env: { ...process.env, CHECKID_LOG_LEVEL: 'debug' },
  });
  const log = () =>
    child
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  let address = '';
  try {
    await waitUntil(
      () => {
        const line = log().find((l) => l.msg === 'checkid listening');
        if (line) address = String(line[command]);
        return address !== '' || child.exited() !== null;
      },
      20_000,
      () => `checkid ${command} did not log "checkid listening"`,
    );
    if (!address) throw new Error(`checkid ${command} ${child.exited()}`);
  } catch (err) {
    await child.stop();
    throw new Error(`${(err as Error).message}\n--- its output ---\n${child.output().trim()}`);
  }
  const port = Number(/:(\d+)$/.exec(address)?.[1] ?? 0);
  return { address, port, child, configPath, log, stop: () => child.stop() };
}
