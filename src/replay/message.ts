/**
 * A stored message (one file of a Maildir, one message of an mbox, an .eml) checked and split
 * into header fields and body, exactly as `checkid check --message` splits a file (splitMessage),
 * so the two give the same verdict for the same bytes. The bytes are carried as latin1 text, one
 * character per octet, so DKIM sees them exactly.
 *
 * `checkid check` takes whatever it is given; a replay of thousands of stored files says which
 * ones are not messages instead: an empty file, a NUL in the header, a header line that is
 * neither a field nor a continuation, no end of the header within 1 MiB.
 */
import { splitMessage } from '../engine/engine.ts';

export class MessageError extends Error {
  override name = 'MessageError';
}

export const MAX_HEADER_BYTES = 1024 * 1024;

export interface StoredMessage {
  headers: Array<[string, string]>;
  /** latin1 text, one character per octet */
  body: string;
  /** the Message-ID without angle brackets; undefined when there is none */
  messageId?: string;
}

/** RFC 5322 field name (printable ASCII but ":"), optional obsolete white space, then ":". */
const FIELD = /^[\x21-\x39\x3b-\x7e]+[ \t]*:/;

function headerEnd(raw: Buffer): number {
  const a = raw.indexOf('\n\n', 0, 'latin1');
  const b = raw.indexOf('\n\r\n', 0, 'latin1');
  if (a < 0) return b;
  if (b < 0) return a;
  return Math.min(a, b);
}

/** A short printable excerpt of a bad line for an error message. */
function excerpt(line: string): string {
  const s = line.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}...` : s);
}

/** Checks and splits one stored message; throws MessageError for what is not a message. */
export function parseStoredMessage(input: Buffer): StoredMessage {
  let raw = input;
  if (raw.length === 0) throw new MessageError('empty message');
  // a single message saved with its mbox postmark ("From sender date")
  if (raw.length >= 5 && raw.toString('latin1', 0, 5) === 'From ') {
    const nl = raw.indexOf(0x0a);
    raw = nl < 0 ? Buffer.alloc(0) : raw.subarray(nl + 1);
    if (raw.length === 0) throw new MessageError('only an mbox "From " line, no message');
  }
  const end = headerEnd(raw);
  const headerLength = end < 0 ? raw.length : end + 1;
  if (headerLength > MAX_HEADER_BYTES) {
    throw new MessageError(end < 0 ? 'no blank line ends the header within the first 1 MiB' : `header of ${headerLength} bytes (more than 1 MiB)`);
  }
  const header = raw.toString('latin1', 0, headerLength);
  const lines = header.split(/\r?\n/);
  let fields = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    if (line.includes('\0')) throw new MessageError(`NUL byte in header line ${i + 1}`);
    if (line[0] === ' ' || line[0] === '\t') {
      if (fields === 0) throw new MessageError('the message starts with a folded (indented) line, not a header field');
      continue;
    }
    if (!FIELD.test(line)) throw new MessageError(`header line ${i + 1} is not a "Name: value" field: ${excerpt(line)}`);
    fields++;
  }
  if (fields === 0) throw new MessageError('no header fields');
  const { headers, body } = splitMessage(raw.toString('latin1'));
  const message: StoredMessage = { headers, body };
  const id = headers.find(([name]) => name.toLowerCase() === 'message-id');
  if (id) {
    const m = messageIdKey(id[1]);
    if (m) message.messageId = m;
  }
  return message;
}

/** A Message-ID as a lookup key: unfolded, trimmed, without the angle brackets. */
export function messageIdKey(value: string): string {
  const v = value.replace(/\r?\n/g, '').trim();
  if (v.startsWith('<') && v.endsWith('>')) return v.slice(1, -1).trim();
  // "<id> (comment)" and other decorations
  const m = /<([^<>]*)>/.exec(v);
  return (m ? m[1]! : v).trim();
}
