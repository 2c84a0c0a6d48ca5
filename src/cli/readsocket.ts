/**
 * `checkid readsocket --listen inet:127.0.0.1:9997|unix:/path`: the server Exim's ACLs ask with
 * `${readsocket{...}}` (docs/adapters/exim.md). Also started by `checkid serve` when
 * `readsocket.listen` is set.
 */
import { createReadsocketServer } from '../adapters/exim/server.ts';
import { trackSocket } from '../telemetry/connections.ts';
import { listenOn, removeSocket } from './policy.ts';
import type { ListenerKind, RunningListener } from './serve.ts';

export const readsocketListener: ListenerKind = {
  name: 'readsocket',
  configured: (runtime) => runtime.store.current().config.readsocket.listen,
  async start(runtime, listen, log): Promise<RunningListener> {
    const readsocket = createReadsocketServer({ engine: runtime.engine, log });
    readsocket.server.on('connection', (socket) => trackSocket(runtime.telemetry?.connections, 'readsocket', socket));
    const { address, unlink } = await listenOn(readsocket.server, listen);
    return {
      name: 'readsocket',
      address,
      async close() {
        await readsocket.shutdown();
        removeSocket(unlink);
      },
    };
  },
};
