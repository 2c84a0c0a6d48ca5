/** `checkid <command>`: one file per command; this one dispatches. */
import { runCheck } from './check.ts';
import { runDoctorCommand } from './doctor.ts';
import { runIntegrate } from './integrate.ts';
import { runQmailQueue } from './qmail.ts';
import { runReplayCommand } from './replay.ts';
import { runListeners } from './serve.ts';
import { runDashboardCommand } from './dashboard.ts';
import { runSiq } from './siq.ts';
import { runSiqServe } from './siq-server.ts';
import { runSmtp } from './smtp.ts';
import { USAGE } from './usage.ts';

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'check':
      return runCheck(rest);
    case 'serve':
      return runListeners(command, rest);
    case 'http':
    case 'milter':
    case 'policy':
    case 'readsocket':
      return runListeners(command, rest, command);
    case 'qmail-queue':
      return runQmailQueue(rest);
    case 'integrate':
      return runIntegrate(rest);
    case 'doctor':
      return runDoctorCommand(rest);
    case 'smtp':
      return runSmtp(rest);
    case 'replay':
      return runReplayCommand(rest);
    case 'siq':
      return runSiq(rest);
    case 'siq-server':
      return runSiqServe(rest);
    case 'dashboard':
      return runDashboardCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    case '--version':
    case 'version':
      process.stdout.write('checkid 0.1.0\n');
      return 0;
    default:
      process.stderr.write(`checkid: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`checkid: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
