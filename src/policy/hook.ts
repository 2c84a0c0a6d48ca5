/**
 * The optional policy hook: a TypeScript or JavaScript module whose default export (or `decide`
 * export) sees the facts and the default verdict at every stage and may return another verdict.
 *
 *   export default function ({ stage, facts, verdict }) {
 *     if (stage === 'rcpt' && facts.envelope.rcpt.at(-1) === 'abuse@example.org') return { action: 'ACCEPT' };
 *   }
 */
import { pathToFileURL } from 'node:url';
import { statSync } from 'node:fs';
import type { Facts } from '../engine/facts.ts';
import { ACTIONS, type Action, type Stage, type Verdict } from '../engine/verdict.ts';
import type { Config } from './config.ts';
import { sanitize } from '../headers/fold.ts';
import { renderHeaders } from '../headers/render.ts';
import { replyText } from './decide.ts';

export interface HookContext {
  stage: Stage;
  facts: Readonly<Facts>;
  verdict: Readonly<Verdict>;
  config: Readonly<Config>;
  recipient?: string;
}

export type HookAnswer = Partial<Verdict> | undefined | null;
export type PolicyHook = (ctx: HookContext) => HookAnswer | Promise<HookAnswer>;

export class HookError extends Error {
  override name = 'HookError';
}

/** Imports the hook module afresh (the file's mtime busts the module cache). */
export async function loadHook(path: string): Promise<PolicyHook> {
  let version: number;
  try {
    version = statSync(path).mtimeMs;
  } catch (err) {
    throw new HookError(`${path}: cannot read the policy hook: ${(err as NodeJS.ErrnoException).code}`);
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(`${pathToFileURL(path).href}?v=${version}`)) as Record<string, unknown>;
  } catch (err) {
    throw new HookError(`${path}: the policy hook does not load: ${(err as Error).message}`);
  }
  const fn = mod.default ?? mod.decide;
  if (typeof fn !== 'function') throw new HookError(`${path}: the policy hook must export a default function (or "decide")`);
  return fn as PolicyHook;
}

/**
 * Merges a hook's answer into the default verdict, checking it is well-formed: a wrong answer is
 * an error (the caller keeps the default verdict and reports it), never a malformed reply.
 */
export function applyHookAnswer(base: Verdict, answer: HookAnswer, facts: Facts, config: Config): Verdict {
  if (answer === undefined || answer === null) return base;
  if (typeof answer !== 'object') throw new HookError(`the hook returned ${typeof answer}, not a verdict object`);
  const action = (answer.action ?? base.action) as Action;
  if (!ACTIONS.includes(action)) throw new HookError(`the hook returned an unknown action ${JSON.stringify(answer.action)}`);
  let reply = answer.reply ?? base.reply;
  if (answer.action && answer.action !== base.action && !answer.reply) reply = defaultReply(action, base);
  if (typeof reply.code !== 'number' || reply.code < 200 || reply.code > 599) throw new HookError(`the hook returned a bad reply code ${reply.code}`);
  const cls = Math.floor(reply.code / 100);
  const expected: Record<Action, number[]> = {
    ACCEPT: [2],
    FILTER: [2],
    CONTINUE: [2, 3],
    DISCARD: [2],
    REJECT: [5],
    TEMPFAIL: [4],
  };
  if (!expected[action].includes(cls)) throw new HookError(`the hook's reply code ${reply.code} does not fit the action ${action}`);
  const xcode = reply.xcode ?? '';
  if (xcode !== '' && !new RegExp(`^${cls}\\.\\d{1,3}\\.\\d{1,3}$`).test(xcode)) {
    throw new HookError(`the hook's enhanced code "${xcode}" does not fit the reply code ${reply.code}`);
  }
  const keepsMessage = action === 'ACCEPT' || action === 'FILTER';
  // a verdict turned into ACCEPT/FILTER gets the headers and removals a default one would carry
  const baseKept = base.action === 'ACCEPT' || base.action === 'FILTER';
  const headers = answer.headers
    ? answer.headers.map((h) => ({ label: sanitize(String(h.label)), text: sanitize(String(h.text)) }))
    : keepsMessage
      ? baseKept
        ? base.headers
        : renderHeaders(facts, config)
      : [];
  const v: Verdict = {
    ...base,
    action,
    reply: { code: reply.code, xcode, text: replyText(String(reply.text ?? '')) },
    headers,
    removeHeaders: answer.removeHeaders ?? (keepsMessage ? (baseKept ? base.removeHeaders : [...facts.forgedAuthResults]) : []),
    explanation: [...base.explanation, ...(answer.explanation ?? ['changed by the policy hook'])],
    reason: answer.reason ?? (action === base.action ? base.reason : 'hook'),
  };
  const tag = answer.subjectTag ?? base.subjectTag;
  if (action === 'FILTER' && tag) v.subjectTag = sanitize(tag);
  else delete v.subjectTag;
  return v;
}

function defaultReply(action: Action, base: Verdict): Verdict['reply'] {
  switch (action) {
    case 'REJECT':
      return { code: 550, xcode: '5.7.1', text: 'Rejected by local policy' };
    case 'TEMPFAIL':
      return { code: 451, xcode: '4.7.1', text: 'Try again later' };
    case 'ACCEPT':
    case 'FILTER':
      return { code: 250, xcode: '', text: 'Sender OK' };
    default:
      return base.reply.code < 400 ? base.reply : { code: 250, xcode: '', text: 'OK' };
  }
}
