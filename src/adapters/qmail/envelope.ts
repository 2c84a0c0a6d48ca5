/**
 * qmail-queue's envelope (qmail-queue(8)): `F<sender>\0`, then `T<recipient>\0` per recipient,
 * then one more `\0`. The sender may be empty (the null sender); there is at least one recipient.
 * Addresses are read as UTF-8 for the checks (an 8-bit address that is not UTF-8 reads with
 * U+FFFD); qmail is 8-bit clean, so the wrapper hands the real qmail-queue the envelope's own
 * bytes, never one re-encoded from these strings.
 */

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
  const [sender, ...recipients] = [first, ...rest].map((f) => f.subarray(1).toString('utf8'));
  return { sender: sender!, recipients };
}

/** The envelope's bytes, addresses in UTF-8: for tests and the fuzzer (the wrapper passes on the bytes it read). */
export function encodeEnvelope(envelope: QmailEnvelope): Buffer {
  const parts = [Buffer.from(`F${envelope.sender}\0`, 'utf8')];
  for (const r of envelope.recipients) parts.push(Buffer.from(`T${r}\0`, 'utf8'));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}
