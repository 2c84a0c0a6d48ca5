/**
 * The live policy: config + optional hook + whatever the engine prepares from them (compiled
 * lists, rating providers). Reloads on file change and on request (SIGHUP); a broken edit keeps
 * the last good policy serving and reports why.
 */
import { existsSync, type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { type Config, ConfigError, defaultConfig, loadConfigFile } from './config.ts';
import { loadHook, type PolicyHook } from './hook.ts';

export interface LoadedPolicy<P> {
  config: Config;
  hook?: PolicyHook;
  prepared: P;
  generation: number;
  loadedAt: number;
}

export type ReloadOutcome = { ok: true; generation: number } | { ok: false; error: string };

export interface PolicyStoreOptions<P> {
  /** the YAML config file; none = embedded defaults */
  path?: string;
  /**
   * Without `path`: a config file of changes made at run time (the dashboard's Apply writes it
   * in the state directory, docs/dashboard.md), read over the defaults when it exists.
   */
  overlay?: string;
  /** adjusts a freshly loaded config (e.g. command-line overrides) */
  override?: (config: Config) => void;
  /** compiles what the engine needs; throwing rejects the new policy */
  prepare: (config: Config) => P;
  onReload?: (outcome: ReloadOutcome) => void;
  now?: () => number;
}

/** The overlay's file name in the state directory (PolicyStoreOptions.overlay). */
export const OVERLAY_FILE = 'policy-overlay.yaml';

export class PolicyStore<P> {
  private readonly options: PolicyStoreOptions<P>;
  private active?: LoadedPolicy<P>;
  private generation = 0;
  private watchers: FSWatcher[] = [];
  private timer?: NodeJS.Timeout;
  private reloading: Promise<ReloadOutcome> | null = null;
  private again: Promise<ReloadOutcome> | null = null;
  lastError: string | null = null;

  constructor(options: PolicyStoreOptions<P>) {
    this.options = options;
  }

  /** The first load: an error here is fatal to the caller (refuse to start on a broken config). */
  async load(): Promise<LoadedPolicy<P>> {
    this.active = await this.build();
    return this.active;
  }

  current(): LoadedPolicy<P> {
    if (!this.active) throw new Error('policy not loaded yet');
    return this.active;
  }

  /**
   * Loads again; on error keeps the current policy and returns why. A request made while a load
   * is under way is not lost: one more load follows it (an edit may have come after it started).
   */
  reload(): Promise<ReloadOutcome> {
    if (this.reloading) {
      this.again ??= this.reloading.then(() => {
        this.again = null;
        return this.reload();
      });
      return this.again;
    }
    this.reloading = (async (): Promise<ReloadOutcome> => {
      try {
        this.active = await this.build();
        this.lastError = null;
        return { ok: true, generation: this.active.generation };
      } catch (err) {
        const error = err instanceof ConfigError ? err.problems.join('\n') : (err as Error).message;
        this.lastError = error;
        return { ok: false, error: `${error}\n(keeping the last good policy, generation ${this.active?.generation ?? 0})` };
      } finally {
        this.reloading = null;
      }
    })().then((outcome) => {
      this.options.onReload?.(outcome);
      return outcome;
    });
    return this.reloading;
  }

  private async build(): Promise<LoadedPolicy<P>> {
    const overlay = !this.options.path && this.options.overlay && existsSync(this.options.overlay) ? this.options.overlay : undefined;
    const file = this.options.path ?? overlay;
    const config = file ? loadConfigFile(file) : defaultConfig();
    this.options.override?.(config);
    const hook = config.hook ? await loadHook(config.hook) : undefined;
    let prepared: P;
    try {
      prepared = this.options.prepare(config);
    } catch (err) {
      throw new ConfigError([`${config.source || 'config'}: ${(err as Error).message}`]);
    }
    this.generation++;
    return {
      config,
      ...(hook ? { hook } : {}),
      prepared,
      generation: this.generation,
      loadedAt: (this.options.now ?? Date.now)(),
    };
  }

  /** Watches the config file and the hook (their directories, so editors that replace files work). */
  watch(debounceMs = 200): void {
    this.unwatch();
    const files = [this.options.path ?? this.options.overlay, this.active?.config.hook].filter((f): f is string => Boolean(f));
    const dirs = new Map<string, Set<string>>();
    for (const f of files) {
      const d = dirname(f);
      if (!dirs.has(d)) dirs.set(d, new Set());
      dirs.get(d)!.add(basename(f));
    }
    for (const [dir, names] of dirs) {
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name && !names.has(name.toString())) return;
          clearTimeout(this.timer);
          this.timer = setTimeout(() => {
            void this.reload().then((o) => {
              // the hook path may have changed
              if (o.ok) this.watch(debounceMs);
            });
          }, debounceMs);
        });
        this.watchers.push(w);
      } catch {
        // a directory we cannot watch: SIGHUP still reloads
      }
    }
  }

  unwatch(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }

  close(): void {
    this.unwatch();
    clearTimeout(this.timer);
  }
}
