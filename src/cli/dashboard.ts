/**
 * `checkid dashboard hash-password [--user NAME]`: reads a password (from the terminal without
 * echo, or one line of standard input) and prints the `password_hash` for `dashboard.users`
 * (docs/dashboard.md). The dashboard itself runs under `checkid serve` (dashboard.listen).
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { hashPassword, passwordProblem } from '../web/password.ts';

const HELP = `usage: checkid dashboard hash-password [--user NAME]

Reads a password (typed twice on a terminal, or one line on standard input) and prints the
line to add under dashboard.users in the config:

  - name: NAME
    password_hash: '$argon2id$...'
`;

/** One line from stdin; on a terminal without echo. */
async function readSecret(prompt: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) {
    const rl = createInterface({ input, terminal: false });
    for await (const line of rl) {
      rl.close();
      return line;
    }
    return '';
  }
  process.stderr.write(prompt);
  input.setRawMode(true);
  input.resume();
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (value: string | null) => {
      input.setRawMode(false);
      input.pause();
      input.off('data', onData);
      process.stderr.write('\n');
      if (value === null) reject(new Error('cancelled'));
      else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(text);
        if (ch === '\u0003' || ch === '\u0004') return done(null);
        if (ch === '\u007f' || ch === '\b') text = [...text].slice(0, -1).join('');
        else text += ch;
      }
    };
    input.on('data', onData);
  });
}

export async function runDashboardCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    process.stdout.write(HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'hash-password') {
    process.stderr.write(`checkid dashboard: unknown subcommand "${sub}"\n\n${HELP}`);
    return 2;
  }
  let user: string | undefined;
  try {
    ({ values: { user } } = parseArgs({ args: rest, options: { user: { type: 'string' } }, allowPositionals: false }));
  } catch (err) {
    process.stderr.write(`checkid dashboard hash-password: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  let password: string;
  try {
    password = await readSecret('password: ');
    if (process.stdin.isTTY && (await readSecret('again: ')) !== password) {
      process.stderr.write('checkid dashboard hash-password: the two passwords differ\n');
      return 1;
    }
  } catch {
    return 1;
  }
  const problem = passwordProblem(password, user ? { account: user } : {});
  if (problem) {
    process.stderr.write(`checkid dashboard hash-password: ${problem}\n`);
    return 1;
  }
  const hash = await hashPassword(password);
  process.stdout.write(user ? `    - name: ${user}\n      password_hash: '${hash}'\n` : `${hash}\n`);
  return 0;
}
