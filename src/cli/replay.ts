/**
 * `checkid replay <mbox|maildir|file|dir>...`: stored messages through the current policy,
 * offline, with a report (docs/replay.md).
 */
import { parseArgs } from 'node:util';
import { EnvelopeError, type GivenEnvelope, loadEnvelopeLines } from '../replay/envelope.ts';
import { DEFAULT_MAX_MESSAGE_BYTES, type MboxFormat } from '../replay/mbox.ts';
import { Progress, type ProgressMode } from '../replay/progress.ts';
import { DEFAULT_SAMPLE, ReplayReport } from '../replay/report.ts';
import { runReplay } from '../replay/runner.ts';
import { InputError, planInputs, readMessages, type SourceItem } from '../replay/sources.ts';
import { startCommandRuntime, UsageError } from './runtime.ts';
import { USAGE } from './usage.ts';

const OPTIONS = {
  config: { type: 'string' },
  resolver: { type: 'string', multiple: true },
  jobs: { type: 'string' },
  report: { type: 'string' },
  envelope: { type: 'string' },
  'trusted-hops': { type: 'string' },
  'received-by': { type: 'string', multiple: true },
  'mbox-format': { type: 'string' },
  'max-message-size': { type: 'string' },
  sample: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

function wholeNumber(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, not "${text}"`);
  return Number(text);
}

/** "64M", "512k", "1048576" → bytes. */
function size(text: string | undefined): number {
  if (text === undefined) return DEFAULT_MAX_MESSAGE_BYTES;
  const m = /^(\d+)([kKmMgG]?)$/.exec(text);
  if (!m) throw new UsageError(`--max-message-size must be a number of bytes (optionally with k, M or G), not "${text}"`);
  const n = Number(m[1]) * { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  if (n < 1024) throw new UsageError('--max-message-size must be at least 1k');
  return n;
}

/** ./checkid-replay-20261123-153000 (local time) */
export function defaultReportDir(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `checkid-replay-${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
}

/** Stops yielding once `stopped()` is true (SIGINT: finish what is in flight, then report). */
async function* until(items: AsyncGenerator<SourceItem>, stopped: () => boolean): AsyncGenerator<SourceItem> {
  try {
    for await (const item of items) {
      if (stopped()) return;
      yield item;
    }
  } finally {
    await items.return(undefined);
  }
}

export async function runReplayCommand(argv: string[]): Promise<number> {
  const say = (text: string) => process.stderr.write(`checkid replay: ${text}\n`);
  let values: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; args: string[]; allowPositionals: true }>>['values'];
  let paths: string[];
  let jobs: number;
  let trustedHops: number | undefined;
  let maxMessageBytes: number;
  let mboxFormat: MboxFormat;
  let sample: number;
  try {
    const parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
    values = parsed.values;
    paths = parsed.positionals;
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (paths.length === 0) throw new UsageError('give at least one mbox file, Maildir, message file or directory');
    jobs = wholeNumber('jobs', values.jobs, 8, 1, 1024);
    trustedHops = values['trusted-hops'] === undefined ? undefined : wholeNumber('trusted-hops', values['trusted-hops'], 0, 0, 100);
    if (trustedHops !== undefined && values['received-by']) throw new UsageError('--trusted-hops and --received-by choose the Received header in two ways: give one');
    maxMessageBytes = size(values['max-message-size']);
    sample = wholeNumber('sample', values.sample, DEFAULT_SAMPLE, 1, 100_000_000);
    const format = values['mbox-format'] ?? 'mboxrd';
    if (format !== 'mboxrd' && format !== 'mboxo') throw new UsageError(`--mbox-format must be mboxrd or mboxo, not "${format}"`);
    mboxFormat = format;
  } catch (err) {
    process.stderr.write(`checkid replay: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }

  let envelopes: Map<string, GivenEnvelope> | undefined;
  let plan: Awaited<ReturnType<typeof planInputs>>;
  try {
    if (values.envelope) envelopes = await loadEnvelopeLines(values.envelope);
    plan = await planInputs(paths);
  } catch (err) {
    if (err instanceof EnvelopeError || err instanceof InputError) {
      say(err.message);
      return 2;
    }
    throw err;
  }

  const runtime = await startCommandRuntime('replay', values);
  if (!runtime) return 3;

  const config = runtime.store.current().config;
  const hop = { ...(trustedHops !== undefined ? { trustedHops } : {}), ...(values['received-by'] ? { receivedBy: values['received-by'] } : {}) };
  const report = new ReplayReport(values.report ?? defaultReportDir(), {
    inputs: paths,
    config: values.config ?? null,
    resolver: config.resolver.servers,
    jobs,
    hop,
    mboxFormat,
    envelopeFile: values.envelope ?? null,
    sample,
  });
  try {
    await report.open();
  } catch (err) {
    say(`cannot write the report in ${report.dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    await runtime.close();
    return 1;
  }

  const mode: ProgressMode = values.quiet ? 'off' : process.stderr.isTTY ? 'bar' : 'lines';
  const progress = new Progress({
    mode,
    write: (text) => process.stderr.write(text),
    totalMessages: plan.messages,
    totalBytes: plan.bytes,
    ...(process.stderr.columns ? { columns: process.stderr.columns } : {}),
  });
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    if (!values.quiet) say('interrupted: finishing the messages in flight and writing the report (Ctrl-C again to quit now)');
  };
  process.on('SIGINT', onSigint);
  try {
    const items = readMessages(plan, { mboxFormat, maxMessageBytes, onBytes: (b) => progress.read(b) });
    await runReplay(runtime.engine, until(items, () => interrupted), { jobs, hop, ...(envelopes ? { envelopes } : {}) }, (entry) => {
      report.add(entry);
      progress.done();
    });
    progress.finish();
    const { totals } = await report.finish(config);
    if (!values.quiet) {
      const actions = Object.entries(totals.actions)
        .sort((a, b) => b[1] - a[1])
        .map(([a, n]) => `${a} ${n}`)
        .join(', ');
      process.stdout.write(
        `${totals.messages} messages: ${totals.checked} checked${actions ? ` (${actions})` : ''}, ${totals.skipped} skipped, ${totals.errors} errors${interrupted ? ' (interrupted)' : ''}\n` +
          `report: ${report.jsonPath}\n        ${report.htmlPath}\n`,
      );
    }
    return interrupted ? 130 : 0;
  } catch (err) {
    report.abort();
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
    await runtime.close();
  }
}
