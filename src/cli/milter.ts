/**
 * The milter listener kind: `checkid milter --listen inet:127.0.0.1:8891` starts it alone (through
 * serve.ts's runner), `checkid serve` starts it with the others from `milter.listen`.
 * docs/adapters/milter.md has the MTA set-up.
 */
import { startMilterServer } from '../adapters/milter/server.ts';
import type { ListenerKind } from './serve.ts';

export const milterListener: ListenerKind = {
  name: 'milter',
  configured: (runtime) => runtime.store.current().config.milter.listen,
  async start(runtime, listen, log) {
    const connections = runtime.telemetry?.connections;
    const server = await startMilterServer({ engine: runtime.engine, listen, log, ...(connections ? { connections } : {}) });
    return { name: 'milter', address: server.address, close: () => server.close() };
  },
};
