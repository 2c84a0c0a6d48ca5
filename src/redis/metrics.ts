/**
 * The Redis connection's figures as Prometheus metrics on GET /metrics (docs/redis.md):
 * checkid_redis_up, checkid_redis_operations_total{op,result}, checkid_redis_writes_dropped_total{op},
 * checkid_redis_connects_total, checkid_redis_connection_errors_total, checkid_redis_breaker_opened_total.
 */
import type { Registry } from '../telemetry/prometheus.ts';
import type { RedisConnection } from './connection.ts';

export function registerRedisMetrics(registry: Registry, connection: RedisConnection): void {
  const up = registry.gauge('checkid_redis_up', 'Whether the shared Redis connection is ready (1) or not (0)');
  const ops = registry.counter('checkid_redis_operations_total', 'Redis operations by name and result (ok, timeout, unavailable, error); all but ok fell back to local behaviour', ['op', 'result']);
  const dropped = registry.counter('checkid_redis_writes_dropped_total', 'Writes to Redis given up on (Redis down, slow or failing), by operation', ['op']);
  const connects = registry.counter('checkid_redis_connects_total', 'Connections to Redis made (the first one included)');
  const errors = registry.counter('checkid_redis_connection_errors_total', 'Redis connection errors (each failed try counts)');
  const breaker = registry.counter('checkid_redis_breaker_opened_total', 'Times a Redis timeout made checkid skip Redis for a short while');
  registry.collect(() => {
    const s = connection.stats();
    up.set({}, s.state === 'ready' ? 1 : 0);
    for (const [op, o] of Object.entries(s.ops)) {
      for (const result of ['ok', 'timeout', 'unavailable', 'error'] as const) ops.setTotal({ op, result }, o[result]);
    }
    for (const [op, n] of Object.entries(s.dropped)) dropped.setTotal({ op }, n);
    connects.setTotal({}, s.connects);
    errors.setTotal({}, s.connectionErrors);
    breaker.setTotal({}, s.breakerOpened);
  });
}
