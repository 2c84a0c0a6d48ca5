/**
 * Lua scripts run atomically in Redis: sent once (EVALSHA by their SHA-1; EVAL when Redis does
 * not know them yet, after a restart or a SCRIPT FLUSH), then by hash.
 */
import { createHash } from 'node:crypto';
import type { RedisClient } from './connection.ts';

export interface LuaScript {
  source: string;
  sha: string;
}

export function lua(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

export async function runScript(client: RedisClient, script: LuaScript, keys: string[], args: Array<string | number>): Promise<unknown> {
  const options = { keys, arguments: args.map(String) };
  try {
    return await client.evalSha(script.sha, options);
  } catch (err) {
    if (!/NOSCRIPT/.test((err as Error).message)) throw err;
    return client.eval(script.source, options);
  }
}
