/**
 * Where checkid keeps what outlives a restart (verdict history, SIQ server accounts): the
 * config's `state_dir`; else systemd's $STATE_DIRECTORY (StateDirectory=checkid in the unit);
 * else /var/lib/checkid when it exists or can be made and is writable (the Debian path); else
 * $XDG_STATE_HOME/checkid (default ~/.local/state/checkid) for a daemon run by a user. The
 * directory is created (mode 0750) when missing.
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const DEBIAN_STATE_DIR = '/var/lib/checkid';

export interface StateDirEnv {
  env?: Record<string, string | undefined>;
  home?: string;
}

function usable(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The state directory in force, created if missing; throws when a configured one is unusable. */
export function resolveStateDir(configured: string, options: StateDirEnv = {}): string {
  const env = options.env ?? process.env;
  if (configured !== '') {
    if (!usable(configured)) throw new Error(`state_dir ${configured}: cannot create or write it`);
    return configured;
  }
  // systemd may list several directories separated by ':'; ours is the first
  const fromSystemd = env.STATE_DIRECTORY?.split(':')[0];
  if (fromSystemd && usable(fromSystemd)) return fromSystemd;
  if (usable(DEBIAN_STATE_DIR)) return DEBIAN_STATE_DIR;
  const xdg = env.XDG_STATE_HOME || join(options.home ?? homedir(), '.local', 'state');
  const dir = join(xdg, 'checkid');
  if (!usable(dir)) throw new Error(`no usable state directory: set state_dir in the config (tried ${DEBIAN_STATE_DIR} and ${dir})`);
  return dir;
}
