/**
 * The SIQ server on the command line (docs/siq-server.md):
 *
 *   checkid siq serve --listen HOST:PORT [--config FILE] [--resolver HOST:PORT] [--db FILE]
 *   checkid siq-server ...                 (the same)
 *   checkid siq account add --email E --ip IP [--ip IP]... [--db FILE] [--config FILE] [--json]
 *   checkid siq account list [--db FILE] [--config FILE] [--json]
 *
 * `checkid serve` starts it too when the config sets `siq_server.listen` (the `siq-server`
 * listener kind, src/cli/siq-listener.ts).
 */
import { parseArgs } from 'node:util';
import { ConfigError, type Config, defaultConfig, loadConfigFile } from '../policy/config.ts';
import type { SiqServerStore } from '../siq/server/store.ts';
import { SiqStoreError } from '../siq/server/store.ts';
import { runListeners } from './serve.ts';
import { openSiqServerStore, setSiqServerDb } from './siq-listener.ts';

export const SIQ_SERVE_USAGE = `usage: checkid siq serve --listen HOST:PORT [--config FILE] [--resolver HOST:PORT] [--db FILE]
       checkid siq account add --email ADDRESS --ip IP [--ip IP]... [--db FILE] [--config FILE] [--json]
       checkid siq account list [--db FILE] [--config FILE] [--json]

  serve    answers SIQ queries over UDP (port 6262 unless given) from registered source IPs, with
           scores from its own checks and each account's profile; siq_server.http_listen adds the
           draft's HTTP form and the gateway report channel (docs/siq-server.md)
  account  adds an account with its source IPs (prints its report API key), or lists accounts

  --db FILE is the SQLite database (default: siq_server.db from the config; none = in memory).
`;

/** `checkid siq serve` / `checkid siq-server`: the listener alone, with --db on top of runListeners' flags. */
export async function runSiqServe(argv: string[]): Promise<number> {
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--db' || a.startsWith('--db=')) {
      const value = a === '--db' ? argv[++i] : a.slice(5);
      if (!value) {
        process.stderr.write(`checkid siq serve: --db needs a file name\n\n${SIQ_SERVE_USAGE}`);
        return 2;
      }
      setSiqServerDb(value);
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(SIQ_SERVE_USAGE);
      return 0;
    } else rest.push(a);
  }
  return runListeners('siq serve', rest, 'siq-server');
}

const ACCOUNT_OPTIONS = {
  email: { type: 'string' },
  ip: { type: 'string', multiple: true },
  db: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** `checkid siq account add|list`. Exit status 0 done, 1 refused (taken e-mail or IP), 2 usage, 3 config. */
export async function runSiqAccount(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  let values: { email?: string; ip?: string[]; db?: string; config?: string; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({ args: rest, options: ACCOUNT_OPTIONS, allowPositionals: false }));
  } catch (err) {
    process.stderr.write(`checkid siq account: ${(err as Error).message}\n\n${SIQ_SERVE_USAGE}`);
    return 2;
  }
  if (values.help || sub === 'help' || sub === '--help') {
    process.stdout.write(SIQ_SERVE_USAGE);
    return 0;
  }
  if (sub !== 'add' && sub !== 'list') {
    process.stderr.write(
      `checkid siq account: expected "add" or "list"${sub ? `, not "${sub}"` : ''}\n\n${SIQ_SERVE_USAGE}`,
    );
    return 2;
  }
  if (sub === 'add' && (!values.email || !values.ip?.length)) {
    process.stderr.write(
      `checkid siq account add: --email and at least one --ip are required\n\n${SIQ_SERVE_USAGE}`,
    );
    return 2;
  }
  let config: Config;
  try {
    config = values.config ? loadConfigFile(values.config) : defaultConfig();
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
    process.stderr.write(
      `checkid siq account: configuration error:\n${problems.map((p) => `  ${p}`).join('\n')}\n`,
    );
    return 3;
  }
  const db = values.db ?? config.siqServer.db;
  if (!db) {
    process.stderr.write(
      'checkid siq account: no database: give --db FILE or set siq_server.db in the config (--config FILE)\n',
    );
    return 2;
  }
  let store: SiqServerStore;
  try {
    store = openSiqServerStore(db);
  } catch (err) {
    process.stderr.write(`checkid siq account: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    if (sub === 'list') {
      const accounts = await store.listAccounts();
      const rows = await Promise.all(
        accounts.map(async (a) => ({
          id: a.id,
          email: a.email,
          createdAt: new Date(a.createdAt).toISOString(),
          ips: await store.listSourceIps(a.id),
        })),
      );
      if (values.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
      else if (rows.length === 0) process.stdout.write('no accounts\n');
      else
        for (const r of rows)
          process.stdout.write(`${r.email}\t${r.ips.join(',') || '-'}\t${r.createdAt}\t${r.id}\n`);
      return 0;
    }
    const email = values.email!;
    let account = await store.getAccountByEmail(email);
    const created = !account;
    // check every IP before writing anything
    for (const ip of values.ip!) {
      const owner = await store.accountIdForIp(ip);
      if (owner && owner !== account?.id)
        throw new SiqStoreError('conflict', `${ip} is registered to another account`);
    }
    account ??= await store.createAccount({ email, passwordHash: '', createdAt: Date.now() });
    for (const ip of values.ip!) await store.addSourceIp(account.id, ip);
    const ips = await store.listSourceIps(account.id);
    if (values.json)
      process.stdout.write(
        `${JSON.stringify({ id: account.id, email: account.email, created, ips, apiKey: account.apiKey })}\n`,
      );
    else {
      process.stdout.write(
        `${created ? 'created' : 'updated'} ${account.email} (${account.id})\nsource IPs  ${ips.join(', ')}\napi key     ${account.apiKey}\n`,
      );
    }
    return 0;
  } catch (err) {
    process.stderr.write(`checkid siq account ${sub}: ${(err as Error).message}\n`);
    return err instanceof SiqStoreError && err.code !== 'conflict' ? 2 : 1;
  } finally {
    await store.close();
  }
}
