/**
 * The SIQ server on the command line (docs/siq-server.md):
 *
 *   checkid siq serve --listen HOST:PORT [--web-listen HOST:PORT] [--db FILE] [--config FILE] [--resolver HOST:PORT]
 *   checkid siq-server ...                 (the same)
 *   checkid siq account add --email E [--ip IP]... [--password-stdin] [--db FILE] [--config FILE] [--json]
 *   checkid siq account passwd --email E --password-stdin [--db FILE] [--config FILE]
 *   checkid siq account list [--db FILE] [--config FILE] [--json]
 *
 * `checkid serve` starts it too when the config sets `siq_server.listen` (the `siq-server`
 * listener kind, src/cli/siq-listener.ts). The account commands use the store the config
 * chooses (`siq_server.store`: SQLite in `siq_server.db`, or Redis); --db picks a SQLite file.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ConfigError, type Config, defaultConfig, loadConfigFile } from '../policy/config.ts';
import type { SiqServerStore } from '../siq/server/store.ts';
import { SiqStoreError } from '../siq/server/store.ts';
import { hashPassword, passwordProblem } from '../web/password.ts';
import { writeConfigError } from './runtime.ts';
import { runListeners } from './serve.ts';
import { openSiqServerStore, SIQ_DB_FILE, setSiqServerDb, setSiqServerWebListen } from './siq-listener.ts';
import { resolveStateDir } from '../common/state-dir.ts';
import { join } from 'node:path';

export const SIQ_SERVE_USAGE = `usage: checkid siq serve --listen HOST:PORT [--web-listen HOST:PORT] [--config FILE] [--resolver HOST:PORT] [--db FILE]
       checkid siq account add --email ADDRESS [--ip IP]... [--password-stdin] [--db FILE] [--config FILE] [--json]
       checkid siq account passwd --email ADDRESS --password-stdin [--db FILE] [--config FILE]
       checkid siq account list [--db FILE] [--config FILE] [--json]

  serve    answers SIQ queries over UDP (port 6262 unless given) from registered source IPs, with
           scores from its own checks and each account's profile; siq_server.http_listen adds the
           draft's HTTP form and the gateway report channel, siq_server.web_listen (or
           --web-listen) the postmasters' pages (docs/siq-server.md, docs/siq-web.md)
  account  add: adds an account (or source IPs to one; prints its report API key); with
           --password-stdin it also gets the password read from one line of standard input, so
           it can sign in to the web pages. passwd: sets or resets an account's password the
           same way. list: the accounts, their source IPs and creation times

  The store is the config's siq_server.store (sqlite: siq_server.db, memory, redis: the redis:
  section); --db FILE names a SQLite database instead.
`;

/** `checkid siq serve` / `checkid siq-server`: the listener alone, with --db and --web-listen on top of runListeners' flags. */
export async function runSiqServe(argv: string[]): Promise<number> {
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const flag = /^(--db|--web-listen)(?:=(.*))?$/.exec(a);
    if (flag) {
      const value = flag[2] ?? argv[++i];
      if (!value) {
        process.stderr.write(
          `checkid siq serve: ${flag[1]} needs ${flag[1] === '--db' ? 'a file name' : 'HOST:PORT'}\n\n${SIQ_SERVE_USAGE}`,
        );
        return 2;
      }
      if (flag[1] === '--db') setSiqServerDb(value);
      else if (!/^\S+:\d{1,5}$/.test(value)) {
        process.stderr.write(`checkid siq serve: --web-listen ${value}: expected HOST:PORT\n\n${SIQ_SERVE_USAGE}`);
        return 2;
      } else setSiqServerWebListen(value);
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
  'password-stdin': { type: 'boolean' },
  db: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** A password refused (none given, too weak): exit status 1. */
class PasswordRefused extends Error {}

/** One line of standard input (without its line end); '' when there is none. Bounded in size. */
async function readPasswordLine(): Promise<string> {
  const rl = createInterface({ input: process.stdin, terminal: false, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    for await (const line of rl) return line;
    return '';
  } finally {
    rl.close();
    process.stdin.pause();
  }
}

/** The password from --password-stdin, checked for strength (as the sign-up page does) and hashed. */
async function newPasswordHash(email: string): Promise<string> {
  const password = await readPasswordLine();
  if (password === '') throw new PasswordRefused('no password on standard input (one line)');
  const weak = passwordProblem(password, { account: email.toLowerCase() });
  if (weak) throw new PasswordRefused(weak);
  return hashPassword(password);
}

/**
 * `checkid siq account add|passwd|list`. Exit status 0 done, 1 refused (taken e-mail or IP, no
 * such account, a weak password, a store error), 2 usage, 3 config.
 */
export async function runSiqAccount(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  let values: {
    email?: string;
    ip?: string[];
    'password-stdin'?: boolean;
    db?: string;
    config?: string;
    json?: boolean;
    help?: boolean;
  };
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
  if (sub !== 'add' && sub !== 'list' && sub !== 'passwd') {
    process.stderr.write(
      `checkid siq account: expected "add", "passwd" or "list"${sub ? `, not "${sub}"` : ''}\n\n${SIQ_SERVE_USAGE}`,
    );
    return 2;
  }
  const withPassword = values['password-stdin'] === true;
  const usage = (message: string) => {
    process.stderr.write(`checkid siq account ${sub}: ${message}\n\n${SIQ_SERVE_USAGE}`);
    return 2;
  };
  if (sub === 'add' && (!values.email || (!values.ip?.length && !withPassword)))
    return usage('--email and at least one --ip (or --password-stdin) are required');
  if (sub === 'passwd' && (!values.email || !withPassword))
    return usage('--email and --password-stdin are required (the new password is one line on standard input)');
  if (sub === 'list' && withPassword) return usage('--password-stdin goes with add or passwd');
  let config: Config;
  try {
    config = values.config ? loadConfigFile(values.config) : defaultConfig();
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
    writeConfigError('siq account', problems);
    return 3;
  }
  const settings = config.siqServer;
  const kind = values.db !== undefined ? 'sqlite' : settings.store;
  let db = values.db ?? settings.db;
  if (kind === 'memory') {
    process.stderr.write(
      'checkid siq account: siq_server.store is memory: accounts live inside the running server only; give --db FILE or use store: sqlite or redis\n',
    );
    return 2;
  }
  if (kind === 'sqlite' && !db) {
    // the server's default: siq.db in the state directory
    try {
      db = join(resolveStateDir(config.stateDir), SIQ_DB_FILE);
    } catch (err) {
      process.stderr.write(`checkid siq account: ${(err as Error).message}; or give --db FILE\n`);
      return 1;
    }
  }
  let store: SiqServerStore;
  try {
    ({ store } = openSiqServerStore({ kind, db, redis: config.redis }));
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
          password: a.passwordHash !== '',
        })),
      );
      if (values.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
      else if (rows.length === 0) process.stdout.write('no accounts\n');
      else
        for (const r of rows)
          process.stdout.write(
            `${r.email}\t${r.ips.join(',') || '-'}\t${r.createdAt}\t${r.id}${r.password ? '' : '\t(no password: cannot sign in)'}\n`,
          );
      return 0;
    }
    const email = values.email!;
    let account = await store.getAccountByEmail(email);
    if (sub === 'passwd') {
      if (!account) throw new SiqStoreError('not-found', `no account for ${email.toLowerCase()}`);
      const passwordHash = await newPasswordHash(account.email);
      await store.updateAccount(account.id, { passwordHash });
      process.stdout.write(
        `password set for ${account.email}; web sessions already signed in stay until they end (idle or maximum time) or the server restarts\n`,
      );
      return 0;
    }
    const created = !account;
    // check every IP before writing anything
    for (const ip of values.ip ?? []) {
      const owner = await store.accountIdForIp(ip);
      if (owner && owner !== account?.id)
        throw new SiqStoreError('conflict', `${ip} is registered to another account`);
    }
    const passwordHash = withPassword ? await newPasswordHash(email) : undefined;
    if (!account) account = await store.createAccount({ email, passwordHash: passwordHash ?? '', createdAt: Date.now() });
    else if (passwordHash) account = (await store.updateAccount(account.id, { passwordHash })) ?? account;
    for (const ip of values.ip ?? []) await store.addSourceIp(account.id, ip);
    const ips = await store.listSourceIps(account.id);
    const password = account.passwordHash !== '';
    if (values.json)
      process.stdout.write(
        `${JSON.stringify({ id: account.id, email: account.email, created, ips, apiKey: account.apiKey, password })}\n`,
      );
    else {
      process.stdout.write(
        `${created ? 'created' : 'updated'} ${account.email} (${account.id})\nsource IPs  ${ips.join(', ') || '(none yet)'}\napi key     ${account.apiKey}\npassword    ${password ? 'set: can sign in to the web pages' : 'none: cannot sign in (set one with checkid siq account passwd --password-stdin)'}\n`,
      );
    }
    return 0;
  } catch (err) {
    process.stderr.write(`checkid siq account ${sub}: ${(err as Error).message}\n`);
    // a bad --email or --ip is a usage error; a taken address, no such account, a weak password, a store failure: refused
    return err instanceof SiqStoreError && err.code === 'invalid' ? 2 : 1;
  } finally {
    await store.close();
  }
}
