/**
 * Applying new thresholds to the live policy the way an operator's edit would: the value goes
 * into the config file (or, without one, the overlay file in the state directory), and the
 * PolicyStore reloads it, exactly as after a hand edit or SIGHUP.
 *
 * The file is edited in place, not rewritten: an existing value's text is replaced where it
 * stands, a missing key is added as one new line under its section (or a new section at the
 * end), so the operator's comments, order, quoting and spacing stay as they were. Where the YAML
 * has a shape these small edits cannot handle (a flow-style section, an indented top level), the
 * `yaml` Document API writes it instead (comments kept, spacing normalised).
 *
 * Nothing unsafe reaches the running policy: the edited text must parse and validate as a config
 * and give the intended values (not, say, a value shadowed by an alias) before it is written;
 * it is written atomically (a temporary file renamed over it, mode kept); and when the reload
 * fails anyway (a hook that no longer loads) the old text is put back and reloaded, while the
 * PolicyStore keeps serving the last good policy throughout.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, openSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isMap, isScalar, parseDocument, type Document, type Pair, type Scalar, type YAMLMap } from 'yaml';
import type { Candidate } from '../history/whatif.ts';
import { type Config, ConfigError, parseConfig, type Thresholds } from '../policy/config.ts';
import type { ReloadOutcome } from '../policy/store.ts';

/** The candidate's keys and where they live in the config file. */
export const CANDIDATE_KEYS: Record<keyof Candidate, [string, string]> = {
  siqTagScore: ['siq', 'tag_score'],
  siqRejectScore: ['siq', 'reject_score'],
  dnsblThreshold: ['prescreen', 'threshold'],
  ratingsReject: ['ratings', 'reject'],
  ratingsAccept: ['ratings', 'accept'],
};

export class ApplyError extends Error {
  override name = 'ApplyError';
  /** HTTP-ish status for the dashboard: 400 bad input, 409 conflict, 500 cannot write */
  readonly status: number;
  constructor(message: string, status = 400) {
    super(message);
    this.status = status;
  }
}

function integer(v: unknown, key: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ApplyError(`${key} must be a whole number from ${min} to ${max}, not ${JSON.stringify(v)}`);
  }
  return v;
}

function thresholdsIn(v: unknown, key: string): Thresholds | null {
  if (v === null) return null;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ApplyError(`${key} must be null or a mapping of average, min, max`);
  const out: Thresholds = {};
  for (const [k, n] of Object.entries(v as Record<string, unknown>)) {
    if (k !== 'average' && k !== 'min' && k !== 'max') throw new ApplyError(`${key}: unknown key "${k}" (average, min, max)`);
    if (n === null || n === undefined) continue;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < -1000 || n > 1000) throw new ApplyError(`${key}.${k} must be a number from -1000 to 1000, not ${JSON.stringify(n)}`);
    out[k] = n;
  }
  if (Object.keys(out).length === 0) throw new ApplyError(`${key}: give at least one of average, min, max (or null for off)`);
  return out;
}

/** A candidate from outside (JSON), checked against the config schema's ranges. */
export function parseCandidate(raw: unknown): Candidate {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ApplyError('the thresholds must be a JSON object');
  const r = raw as Record<string, unknown>;
  const c: Candidate = {};
  for (const key of Object.keys(r)) if (!(key in CANDIDATE_KEYS)) throw new ApplyError(`unknown threshold "${key}"; known: ${Object.keys(CANDIDATE_KEYS).join(', ')}`);
  if (r.siqTagScore !== undefined) c.siqTagScore = integer(r.siqTagScore, 'siq.tag_score', -1, 100);
  if (r.siqRejectScore !== undefined) c.siqRejectScore = integer(r.siqRejectScore, 'siq.reject_score', -1, 100);
  if (r.dnsblThreshold !== undefined) c.dnsblThreshold = integer(r.dnsblThreshold, 'prescreen.threshold', -1000, 1000);
  if (r.ratingsReject !== undefined) c.ratingsReject = thresholdsIn(r.ratingsReject, 'ratings.reject');
  if (r.ratingsAccept !== undefined) c.ratingsAccept = thresholdsIn(r.ratingsAccept, 'ratings.accept');
  return c;
}

function current(config: Config, key: keyof Candidate): number | Thresholds | null {
  switch (key) {
    case 'siqTagScore':
      return config.siq.tagScore;
    case 'siqRejectScore':
      return config.siq.rejectScore;
    case 'dnsblThreshold':
      return config.prescreen.threshold;
    case 'ratingsReject':
      return config.ratings.reject;
    case 'ratingsAccept':
      return config.ratings.accept;
  }
}

const same = (a: unknown, b: unknown) => JSON.stringify(normal(a)) === JSON.stringify(normal(b));
function normal(v: unknown): unknown {
  if (v && typeof v === 'object') {
    const t = v as Thresholds;
    return { average: t.average ?? null, min: t.min ?? null, max: t.max ?? null };
  }
  return v;
}

export interface KeyChange {
  /** the config key, e.g. "siq.reject_score" */
  key: string;
  from: number | Thresholds | null;
  to: number | Thresholds | null;
}

/** What applying `c` over `config` changes (keys whose value would be the same are left out). */
export function changesOf(config: Config, c: Candidate): KeyChange[] {
  const out: KeyChange[] = [];
  for (const key of Object.keys(CANDIDATE_KEYS) as Array<keyof Candidate>) {
    if (c[key] === undefined) continue;
    const from = current(config, key);
    const to = c[key] as number | Thresholds | null;
    if (!same(from, to)) out.push({ key: CANDIDATE_KEYS[key].join('.'), from, to });
  }
  return out;
}

/** A value as YAML text: a number, null, or a flow mapping. */
export function yamlValue(v: number | Thresholds | null): string {
  if (v === null) return 'null';
  if (typeof v === 'number') return String(v);
  const parts = (['average', 'min', 'max'] as const).filter((k) => v[k] !== undefined).map((k) => `${k}: ${v[k]}`);
  return `{ ${parts.join(', ')} }`;
}

interface Edit {
  start: number;
  end: number;
  text: string;
}

function lineStart(text: string, pos: number): number {
  return text.lastIndexOf('\n', pos - 1) + 1;
}

/** The position after the line feed ending the line that holds `pos` (or the text's end). */
function nextLine(text: string, pos: number): number {
  const nl = text.indexOf('\n', pos);
  return nl < 0 ? text.length : nl + 1;
}

/** `end` moved back over trailing white space and line feeds (a block's range takes them in). */
function trimEnd(text: string, start: number, end: number): number {
  let e = end;
  while (e > start && /\s/.test(text[e - 1]!)) e--;
  return e;
}

type Ranged = { range?: [number, number, number] | null };

/**
 * Edits that turn a block mapping of thresholds (average/min/max on lines of their own) into
 * `value`: kept keys change in place, dropped keys lose their line, new keys get a line. So the
 * comments on the lines that stay, stay.
 */
function thresholdBlockEdits(text: string, map: YAMLMap, value: Thresholds): Edit[] | null {
  const edits: Edit[] = [];
  const seen = new Set<string>();
  for (const p of map.items) {
    if (!isScalar(p.key) || !isScalar(p.value)) return null;
    const k = String((p.key as Scalar).value);
    const keyRange = (p.key as Ranged).range;
    const valueRange = (p.value as Ranged).range;
    if (!keyRange || !valueRange) return null;
    seen.add(k);
    const v = value[k as keyof Thresholds];
    if (v !== undefined) edits.push({ start: valueRange[0], end: valueRange[1], text: String(v) });
    else edits.push({ start: lineStart(text, keyRange[0]), end: nextLine(text, valueRange[1]), text: '' });
  }
  const first = (map.items[0]?.key as Ranged | undefined)?.range;
  if (!first) return null;
  const at = lineStart(text, first[0]);
  const indent = text.slice(at, first[0]);
  if (!/^[ ]+$/.test(indent)) return null;
  const added = (['average', 'min', 'max'] as const).filter((k) => value[k] !== undefined && !seen.has(k)).map((k) => `${indent}${k}: ${value[k]}\n`);
  if (added.length > 0) edits.push({ start: at, end: at, text: added.join('') });
  return edits;
}

/**
 * The small text edits that set `section.key` to `value`, or null when the document's shape
 * needs the Document API.
 */
function editFor(text: string, doc: Document, section: string, key: string, value: number | Thresholds | null, appended: Map<string, string[]>): Edit[] | null {
  const root = doc.contents;
  if (root !== null && (!isMap(root) || root.flow)) return null;
  const sectionPair = root ? (root as YAMLMap).items.find((p) => isScalar(p.key) && String((p.key as Scalar).value) === section) : undefined;
  if (!sectionPair || sectionPair.value === null || (isScalar(sectionPair.value) && (sectionPair.value as Scalar).value === null)) {
    if (sectionPair) return null; // "siq:" with nothing under it, or "siq: null": let the Document API fill it
    // a new section at the end (several keys of one section gathered by the caller)
    const lines = appended.get(section) ?? [];
    lines.push(`  ${key}: ${yamlValue(value)}`);
    appended.set(section, lines);
    return [];
  }
  const map = sectionPair.value;
  if (!isMap(map) || map.flow) return null;
  const pair = map.items.find((p) => isScalar(p.key) && String((p.key as Scalar).value) === key) as Pair | undefined;
  if (pair) {
    const node = pair.value as { range?: [number, number, number] } | null;
    if (!node?.range) return null;
    if (isScalar(pair.value) || (isMap(pair.value) && (pair.value as YAMLMap).flow)) {
      return [{ start: node.range[0], end: node.range[1], text: yamlValue(value) }];
    }
    if (isMap(pair.value)) {
      const block = pair.value as YAMLMap;
      if (value !== null && typeof value === 'object') return thresholdBlockEdits(text, block, value);
      // off (null) or a number: the whole block goes, from just after "key:" to its last value
      const keyNode = pair.key as Ranged;
      if (!keyNode.range) return null;
      const colon = text.indexOf(':', keyNode.range[1]);
      if (colon < 0 || colon > node.range[0]) return null;
      return [{ start: colon + 1, end: trimEnd(text, colon + 1, node.range[1]), text: ` ${yamlValue(value)}` }];
    }
    return null;
  }
  // a new key: one line above the section's first key, at its indentation
  const first = map.items[0]?.key as { range?: [number, number, number] } | undefined;
  if (!first?.range) return null;
  const at = lineStart(text, first.range[0]);
  const indent = text.slice(at, first.range[0]);
  if (!/^[ ]+$/.test(indent)) return null;
  return [{ start: at, end: at, text: `${indent}${key}: ${yamlValue(value)}\n` }];
}

/** The Document API's way: right for any shape, but the whole file is written anew. */
function rewrite(text: string, c: Candidate): string {
  const whole = parseDocument(text);
  try {
    if (whole.contents === null) whole.contents = whole.createNode({}) as never;
    for (const k of Object.keys(CANDIDATE_KEYS) as Array<keyof Candidate>) {
      if (c[k] === undefined) continue;
      const [section, key] = CANDIDATE_KEYS[k];
      const node = whole.get(section, true);
      // "siq:" with nothing under it, or "siq: null": a mapping takes its place
      if (node === undefined || node === null || (isScalar(node) && (node as Scalar).value === null)) whole.set(section, whole.createNode({}));
      whole.setIn([section, key], c[k]);
    }
  } catch (err) {
    throw new ApplyError(`the file's layout cannot be edited here (${(err as Error).message}): edit it by hand`, 409);
  }
  return whole.toString();
}

/**
 * The config text with the candidate's values set, comments and layout kept. Throws ApplyError
 * when the text is not YAML to begin with.
 */
export function editConfigText(text: string, c: Candidate): string {
  const doc = parseDocument(text, { keepSourceTokens: true });
  if (doc.errors.length > 0) throw new ApplyError(`the file is not valid YAML (${doc.errors[0]!.message.split('\n')[0]}): fix it by hand first`, 409);
  const edits: Edit[] = [];
  const appended = new Map<string, string[]>();
  let fallback = false;
  for (const k of Object.keys(CANDIDATE_KEYS) as Array<keyof Candidate>) {
    if (c[k] === undefined) continue;
    const [section, key] = CANDIDATE_KEYS[k];
    const e = editFor(text, doc, section, key, c[k] as number | Thresholds | null, appended);
    if (!e) {
      fallback = true;
      break;
    }
    edits.push(...e);
  }
  if (fallback) return rewrite(text, c);
  let out = text;
  // from the end backwards, so earlier positions stay right
  edits.sort((a, b) => b.start - a.start || b.end - a.end);
  for (const e of edits) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  if (appended.size > 0) {
    if (out !== '' && !out.endsWith('\n')) out += '\n';
    for (const [section, lines] of appended) out += `${section}:\n${lines.join('\n')}\n`;
  }
  return out;
}

/** Writes `text` to `file` atomically where the directory allows it (same mode), else in place. */
export function writeFileAtomic(file: string, text: string): void {
  const target = existsSync(file) ? realpathSync(file) : file;
  const mode = existsSync(target) ? statSync(target).mode & 0o7777 : 0o640;
  const tmp = join(dirname(target), `.${basename(target)}.checkid-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // a directory we may not create files in (/etc/checkid owned by root): write the file itself
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      writeFileSync(target, text, { mode });
      return;
    }
    throw err;
  }
  try {
    writeSync(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    chmodSync(tmp, mode);
    renameSync(tmp, target);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw err;
  }
}

export interface ApplyTarget {
  /** the file the policy is read from: the config file, or the overlay in the state directory */
  file: string;
  /** whether `file` is the overlay (created when missing) */
  overlay: boolean;
  /** the PolicyStore's reload */
  reload(): Promise<ReloadOutcome>;
}

export type ApplyOutcome =
  | { ok: true; file: string; generation: number; changes: KeyChange[] }
  | { ok: false; file: string; error: string; restored: boolean };

/**
 * Sets the candidate's thresholds in the file and reloads the policy. Throws ApplyError before
 * anything is written when the edit would not give a valid config with these values; resolves
 * with the reload's outcome otherwise (on failure the old file is back and reloaded).
 */
export async function applyToFile(target: ApplyTarget, live: Config, c: Candidate): Promise<ApplyOutcome> {
  const { file } = target;
  const changes = changesOf(live, c);
  if (changes.length === 0) throw new ApplyError('nothing to change: these are the thresholds in force');
  const existed = existsSync(file);
  if (!existed && !target.overlay) throw new ApplyError(`${file}: the config file is gone`, 409);
  let before: string;
  try {
    before = existed ? readFileSync(file, 'utf8') : '';
  } catch (err) {
    throw new ApplyError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 500);
  }
  const after = editConfigText(before, c);
  let parsed: Config;
  try {
    parsed = parseConfig(after, file, dirname(file));
  } catch (err) {
    const detail = err instanceof ConfigError ? err.problems.join('; ') : (err as Error).message;
    throw new ApplyError(`the edited config would not load, so nothing was written: ${detail}`, 409);
  }
  // the file must now say what was asked (an alias or a merge key could shadow the edit)
  const wrong = (Object.keys(CANDIDATE_KEYS) as Array<keyof Candidate>).filter((k) => c[k] !== undefined && !same(current(parsed, k), c[k]));
  if (wrong.length > 0) {
    throw new ApplyError(`the file sets ${wrong.map((k) => CANDIDATE_KEYS[k].join('.')).join(', ')} in a way this edit cannot change (an alias or merge key?): edit it by hand`, 409);
  }
  try {
    writeFileAtomic(file, after);
  } catch (err) {
    throw new ApplyError(`${file}: cannot write: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 500);
  }
  const outcome = await target.reload();
  if (outcome.ok) return { ok: true, file, generation: outcome.generation, changes };
  // put the file back as it was, so the file and the running policy agree again
  let restored = false;
  try {
    if (existed) writeFileAtomic(file, before);
    else unlinkSync(file);
    restored = true;
    await target.reload();
  } catch {
    // restored stays false: the message says so
  }
  return { ok: false, file, error: outcome.error, restored };
}
