/**
 * Connection counting for adapters, with no dependency on metrics: an adapter given a tracker
 * calls `trackSocket(tracker, 'milter', socket)` for each connection it accepts (or
 * `tracker.opened('milter')` and calls the returned function once when the connection ends).
 * checkid_connections_active and checkid_connections_total come from it (docs/operations.md).
 */

export interface ConnectionTracker {
  /** A connection to `listener` opened; call the result when it closes (more calls do nothing). */
  opened(listener: string): () => void;
}

/** Counts `socket` from now until its 'close' event. */
export function trackSocket(tracker: ConnectionTracker | undefined, listener: string, socket: { once(event: 'close', listener: () => void): unknown }): void {
  if (!tracker) return;
  socket.once('close', tracker.opened(listener));
}
