/** `checkid check`: one verdict from the command line, explained, or as JSON. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { splitMessage } from '../engine/engine.ts';
import type { Facts } from '../engine/facts.ts';
import type { Verdict } from '../engine/verdict.ts';
import { startCommandRuntime, UsageError } from './runtime.ts';
import { USAGE } from './usage.ts';

const OPTIONS = {
  ip: { type: 'string' },
  id: { type: 'string' },
  helo: { type: 'string' },
  from: { type: 'string' },
  rcpt: { type: 'string', multiple: true },
  message: { type: 'string' },
  config: { type: 'string' },
  resolver: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function runCheck(argv: string[]): Promise<number> {
  let values: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; args: string[] }>>['values'];
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: false }));
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (!values.ip) throw new UsageError('--ip is required');
  } catch (err) {
    process.stderr.write(`checkid check: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  let message: { headers: Array<[string, string]>; body: string } | undefined;
  if (values.message) {
    try {
      message = splitMessage(readFileSync(values.message, 'latin1'));
    } catch (err) {
      process.stderr.write(`checkid check: cannot read --message ${values.message}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
      return 2;
    }
  }
  const runtime = await startCommandRuntime('check', values);
  if (!runtime) return 3;
  try {
    const result = await runtime.engine.checkID({
      ip: values.ip!,
      ...(values.id ? { id: values.id } : {}),
      ...(values.helo ? { helo: values.helo } : {}),
      ...(values.from !== undefined ? { mailFrom: values.from } : {}),
      rcpt: values.rcpt ?? [],
      // the file's bytes are carried as latin1 text, one character per octet, so DKIM sees them exactly
      ...(message ? { headers: message.headers, body: message.body, encoding: 'latin1' as const } : {}),
    });
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({
          action: result.action,
          reply: result.reply,
          headers: result.headers,
          removeHeaders: result.verdict.removeHeaders,
          stage: result.verdict.stage,
          reason: result.verdict.reason,
          explanation: result.verdict.explanation,
          facts: result.session.facts,
        })}\n`,
      );
    } else {
      process.stdout.write(explain(result.verdict, result.session.facts));
    }
    return 0;
  } catch (err) {
    if (err instanceof Error && err.name === 'SessionError') {
      process.stderr.write(`checkid check: ${err.message}\n`);
      return 2;
    }
    throw err;
  } finally {
    await runtime.close();
  }
}

/** A readable account of every fact and of why the policy decided as it did. */
export function explain(v: Verdict, f: Facts): string {
  const lines: string[] = [];
  const e = f.envelope;
  lines.push(`client     ${e.ip}${e.helo ? `  HELO ${e.helo}` : ''}${e.id ? `  ID ${e.id}` : ''}`);
  if (e.mailFrom !== undefined) lines.push(`envelope   MAIL FROM <${e.mailFrom}>${e.rcpt.length ? `  RCPT TO ${e.rcpt.map((r) => `<${r}>`).join(' ')}` : ''}`);
  lines.push('', 'facts');
  if (f.localList) lines.push(`  local lists   ip: ${f.localList.ip}${f.localList.domains.length ? `; ${f.localList.domains.map((d) => `${d.domain} on ${d.list} list`).join(', ')}` : ''}`);
  if (f.dnsbl) {
    lines.push(`  dnsbl         score ${f.dnsbl.score}`);
    for (const z of f.dnsbl.results) lines.push(`    ${z.zone.padEnd(28)} ${z.status}${z.codes.length ? ` ${z.codes.join(',')}` : ''}${z.error ? ` (${z.error})` : ''}`);
  }
  if (f.iprev) lines.push(`  iprev         ${f.iprev.result}: ${f.iprev.reason}`);
  if (f.helo) lines.push(`  helo          ${f.helo.syntax}${'resolves' in f.helo && f.helo.resolves ? `, resolves: ${f.helo.resolves}` : ''}`);
  if (f.csa) lines.push(`  csa           ${f.csa.result}: ${f.csa.reason}`);
  if (f.spfHelo) lines.push(`  spf (helo)    ${f.spfHelo.result}: ${f.spfHelo.reason}`);
  if (f.spfMailFrom) lines.push(`  spf (mail)    ${f.spfMailFrom.result}: ${f.spfMailFrom.reason}`);
  if (f.identity) lines.push(`  identity      ${f.identity.domain} (from ${f.identity.source === 'id' ? 'the ID command' : 'HELO'}): ${f.identity.method} ${f.identity.result.toUpperCase()} — ${f.identity.spf.reason}`);
  if (f.ratings) {
    const s = f.ratings.scores;
    lines.push(`  ratings       ${f.ratings.status}${f.ratings.ratings.length ? ` ${f.ratings.ratings.map((r) => `${r.service}:${r.grade}`).join(',')}` : ''}${s.average !== null ? ` (min ${s.min}, max ${s.max}, average ${s.average.toFixed(2)})` : ''}`);
    for (const o of f.ratings.outcomes) lines.push(`    ${o.provider}: ${o.status} — ${o.message}`);
  }
  for (const r of f.forgedAuthResults) lines.push(`  forged A-R    ${r.name} #${r.occurrence} (${r.reason}): will be removed`);
  for (const x of f.internalErrors) lines.push(`  ERROR         ${x}`);
  lines.push('', `verdict    ${v.action} at ${v.stage} (${v.reason})`);
  lines.push(`reply      ${v.reply.code}${v.reply.xcode ? ` ${v.reply.xcode}` : ''} ${v.reply.text}`);
  for (const why of v.explanation) lines.push(`because    ${why}`);
  if (v.subjectTag) lines.push(`subject    tagged ${v.subjectTag}`);
  for (const h of v.headers) lines.push(`header     ${h.label} ${h.text.replace(/\r\n/g, '\n           ')}`);
  return `${lines.join('\n')}\n`;
}
