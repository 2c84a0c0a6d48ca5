/**
 * qmail-queue's envelope (qmail-queue(8)): `F<sender>\0`, then `T<recipient>\0` per recipient,
 * then one more `\0`. The sender may be empty (the null sender); there is at least one recipient.
 * qmail is 8-bit clean: addresses are read as UTF-8, and one that is not UTF-8 is written back
 * with the bytes it came with.
 */
import { isUtf8 } from 'node:buffer';

/** qmail-queue's own exit codes for a bad envelope. */
export const QQ_READ_ERROR = 54;
export const QQ_ENVELOPE_FORMAT = 91;

export class EnvelopeError extends Error {
  override name = 'EnvelopeError';
  readonly exitCode: number;
  constructor(exitCode: number, message: string) {
    super(message);
    this.exitCode = exitCode;
  }
}

export interface QmailEnvelope {
  sender: string;
  recipients: string[];
}

/**
 * Parses a whole envelope. An envelope cut short (no final NUL: the sender of the message gave
 * up) is a read error (54), anything else malformed a format error (91), as qmail-queue says.
 */
export function parseEnvelope(bytes: Uint8Array): QmailEnvelope {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length === 0) throw new EnvelopeError(QQ_READ_ERROR, 'empty envelope');
  const fields: Buffer[] = [];
  let start = 0;
  for (;;) {
    const nul = buf.indexOf(0, start);
    if (nul === -1) throw new EnvelopeError(QQ_READ_ERROR, 'envelope ends before its final NUL');
    if (nul === start) {
      if (nul !== buf.length - 1) throw new EnvelopeError(QQ_ENVELOPE_FORMAT, 'data after the final NUL of the envelope');
      break;
    }
    fields.push(buf.subarray(start, nul));
    start = nul + 1;
  }
  const [first, ...rest] = fields;
  if (first?.[0] !== 0x46) throw new EnvelopeError(QQ_ENVELOPE_FORMAT, 'envelope does not start with F<sender>');
  if (rest.length === 0) throw new EnvelopeError(QQ_ENVELOPE_FORMAT, 'envelope without recipients');
  for (const f of rest) {
    if (f[0] !== 0x54) throw new EnvelopeError(QQ_ENVELOPE_FORMAT, `envelope field ${JSON.stringify(f.subarray(0, 40).toString('utf8'))} is not T<recipient>`);
  }
  const raw = [first, ...rest].map((f) => f.subarray(1));
  const [sender, ...recipients] = raw.map((b) => b.toString('utf8'));
  const envelope = { sender: sender!, recipients };
  if (!raw.every((b) => isUtf8(b))) RAW.set(envelope, raw.map((b) => Buffer.from(b)));
  return envelope;
}

/** The bytes of the addresses of a parsed envelope that is not all UTF-8: sender, then recipients. */
const RAW = new WeakMap<QmailEnvelope, Buffer[]>();

/**
 * The envelope's bytes. An address of a parsed envelope that was not UTF-8 is written with the
 * bytes it was read from, as long as it is still the text it was read as.
 */
export function encodeEnvelope(envelope: QmailEnvelope): Buffer {
  const raw = RAW.get(envelope);
  const bytes = (text: string, i: number): Buffer => {
    const original = raw?.[i];
    return original && original.toString('utf8') === text ? original : Buffer.from(text, 'utf8');
  };
  const parts = [Buffer.from('F'), bytes(envelope.sender, 0), Buffer.from([0])];
  for (const [i, r] of envelope.recipients.entries()) parts.push(Buffer.from('T'), bytes(r, i + 1), Buffer.from([0]));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}
