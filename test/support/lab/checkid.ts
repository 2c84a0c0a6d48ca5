/**
 * checkid's milter as the lab runs it: the real daemon, `checkid milter --listen inet:127.0.0.1:PORT
 * --config FILE --resolver HOST:PORT`, as a child process (its own CPU and memory, as deployed).
 */
import { CHECKID_BIN } from '../fixtures.ts';
import { type Child, freePort, spawnChild, waitForListener } from './lab.ts';

export interface RunningMilter {
  /** for the MTA's config, in checkid/Postfix notation: inet:127.0.0.1:PORT */
  address: string;
  port: number;
  child: Child;
  /** the daemon's log (JSON lines on stderr) */
  output(): string;
  stop(): Promise<void>;
}

export interface MilterStartOptions {
  config: string;
  /** the DNS server, HOST:PORT */
  resolver: string;
  /** where to listen: inet:127.0.0.1:PORT or unix:/path; default inet on a free port */
  listen?: string;
}

export async function startCheckidMilter(options: MilterStartOptions): Promise<RunningMilter> {
  const address = options.listen ?? `inet:127.0.0.1:${await freePort()}`;
  const unix = /^unix:(.+)$/.exec(address)?.[1];
  const port = unix ? 0 : Number(/:(\d+)$/.exec(address)![1]);
  const child = spawnChild(process.execPath, [
    CHECKID_BIN,
    'milter',
    '--listen',
    address,
    '--config',
    options.config,
    '--resolver',
    options.resolver,
  ]);
  try {
    await waitForListener(unix ?? port, 20_000, () => {
      const ended = child.exited();
      return ended ? `checkid milter ${ended}` : null;
    });
  } catch (err) {
    await child.stop();
    throw new Error(
      `checkid milter did not start: ${(err as Error).message}\n--- its output ---\n${child.output().trim()}`,
    );
  }
  return { address, port, child, output: () => child.output(), stop: () => child.stop() };
}
