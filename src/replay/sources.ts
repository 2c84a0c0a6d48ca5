/**
 * What a replay reads: each path on the command line is
 *
 * - a Maildir (a directory with cur/ or new/): the files of cur/ then new/, by name;
 * - an mbox (a file whose first bytes are "From "): read as a stream (mbox.ts);
 * - a single message (.eml or any other file);
 * - a directory of any of these, walked in name order (sub-directories too).
 *
 * Hidden files (".name"), envelope files ("*.envelope.json") and Maildir's tmp/ are skipped.
 * `planInputs` lists the files first (names and sizes: the total for the progress display);
 * `readMessages` then yields one item per message, in order, reading only as fast as the
 * items are taken. An unreadable file or a broken mbox entry is an item with an `error`.
 */
import type { Dirent } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_MAX_MESSAGE_BYTES, type MboxFormat, readMbox } from './mbox.ts';

export type SourceKind = 'mbox' | 'maildir' | 'file';

export interface PlannedFile {
  path: string;
  kind: SourceKind;
  size: number;
  /** `<path>.envelope.json` exists next to it */
  envelopeFile?: string;
}

export interface Plan {
  files: PlannedFile[];
  bytes: number;
  /** the number of messages, when known without reading (no mbox among the inputs) */
  messages: number | null;
}

export interface SourceItem {
  /** 1-based, in reading order */
  seq: number;
  file: string;
  kind: SourceKind;
  /** mbox: byte offset of the postmark line and the message's position in the file */
  offset?: number;
  index?: number;
  raw?: Buffer;
  envelopeFile?: string;
  /** the message could not be read */
  error?: string;
}

export class InputError extends Error {
  override name = 'InputError';
}

const ENVELOPE_SUFFIX = '.envelope.json';

async function sniffMbox(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(5);
    const { bytesRead } = await fh.read(buf, 0, 5, 0);
    return bytesRead === 5 && buf.toString('latin1') === 'From ';
  } finally {
    await fh.close();
  }
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

function sorted(entries: Dirent[]): Dirent[] {
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function addFile(out: PlannedFile[], path: string, kind: SourceKind | null, names?: Set<string>, name?: string): Promise<void> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    // listed but gone or unreadable: reported when read
    out.push({ path, kind: kind ?? 'file', size: 0 });
    return;
  }
  let k = kind;
  if (k === null) {
    try {
      k = (await sniffMbox(path)) ? 'mbox' : 'file';
    } catch {
      k = 'file';
    }
  }
  const entry: PlannedFile = { path, kind: k, size };
  if (k !== 'mbox') {
    const sidecar = `${path}${ENVELOPE_SUFFIX}`;
    const has = names && name !== undefined ? names.has(`${name}${ENVELOPE_SUFFIX}`) : await stat(sidecar).then(
      (s) => s.isFile(),
      () => false,
    );
    if (has) entry.envelopeFile = sidecar;
  }
  out.push(entry);
}

async function addMaildir(out: PlannedFile[], dir: string): Promise<void> {
  for (const sub of ['cur', 'new']) {
    const path = join(dir, sub);
    let entries: Dirent[];
    try {
      entries = await readdir(path, { withFileTypes: true });
    } catch {
      continue;
    }
    const names = new Set(entries.map((e) => e.name));
    for (const e of sorted(entries)) {
      if (e.name.startsWith('.') || e.name.endsWith(ENVELOPE_SUFFIX) || e.isDirectory()) continue;
      await addFile(out, join(path, e.name), 'maildir', names, e.name);
    }
  }
}

async function addDirectory(out: PlannedFile[], dir: string, depth: number): Promise<void> {
  if (depth > 32) throw new InputError(`${dir}: directories nested more than 32 deep`);
  if ((await isDir(join(dir, 'cur'))) || (await isDir(join(dir, 'new')))) return addMaildir(out, dir);
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new InputError(`cannot read directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const names = new Set(entries.map((e) => e.name));
  for (const e of sorted(entries)) {
    if (e.name.startsWith('.') || e.name.endsWith(ENVELOPE_SUFFIX)) continue;
    const path = join(dir, e.name);
    if (e.isDirectory()) await addDirectory(out, path, depth + 1);
    else if (e.isFile() || e.isSymbolicLink()) await addFile(out, path, null, names, e.name);
  }
}

/** Lists what the paths hold; a path that does not exist is an InputError. */
export async function planInputs(paths: string[]): Promise<Plan> {
  const files: PlannedFile[] = [];
  for (const path of paths) {
    let s: Awaited<ReturnType<typeof stat>>;
    try {
      s = await stat(path);
    } catch (err) {
      throw new InputError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : ((err as NodeJS.ErrnoException).code ?? (err as Error).message)}`);
    }
    if (s.isDirectory()) await addDirectory(files, path, 0);
    else await addFile(files, path, null);
  }
  return {
    files,
    bytes: files.reduce((sum, f) => sum + f.size, 0),
    messages: files.some((f) => f.kind === 'mbox') ? null : files.length,
  };
}

export interface ReadOptions {
  mboxFormat?: MboxFormat;
  maxMessageBytes?: number;
  /** told the bytes read so far, over all files */
  onBytes?: (bytes: number) => void;
}

/** One item per message of the plan, in order. */
export async function* readMessages(plan: Plan, options: ReadOptions = {}): AsyncGenerator<SourceItem> {
  const max = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  let seq = 0;
  let done = 0;
  for (const f of plan.files) {
    if (f.kind === 'mbox') {
      try {
        for await (const item of readMbox(f.path, {
          maxMessageBytes: max,
          ...(options.mboxFormat ? { format: options.mboxFormat } : {}),
          onBytes: (b) => options.onBytes?.(done + b),
        })) {
          const base = { seq: ++seq, file: f.path, kind: f.kind, offset: item.offset, index: item.index };
          yield item.kind === 'message' ? { ...base, raw: item.raw } : { ...base, error: item.error };
        }
      } catch (err) {
        yield { seq: ++seq, file: f.path, kind: f.kind, error: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
      }
      done += f.size;
      options.onBytes?.(done);
      continue;
    }
    const item: SourceItem = { seq: ++seq, file: f.path, kind: f.kind, ...(f.envelopeFile ? { envelopeFile: f.envelopeFile } : {}) };
    try {
      const size = (await stat(f.path)).size;
      if (size > max) item.error = `message larger than ${max} bytes: skipped`;
      else item.raw = await readFile(f.path);
    } catch (err) {
      item.error = `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    }
    done += f.size;
    options.onBytes?.(done);
    yield item;
  }
}
