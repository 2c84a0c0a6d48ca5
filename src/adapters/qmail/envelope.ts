/**
 * qmail-queue's envelope (qmail-queue(8)): `F<sender>\0`, then `T<recipient>\0` per recipient,
 * then one more `\0`. The sender may be empty (the null sender); there is at least one recipient.
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
  const fields: string[] = [];
  let start = 0;
  for (;;) {
    const nul = buf.indexOf(0, start);
    if (nul === -1) throw new EnvelopeError(QQ_READ_ERROR, 'envelope ends before its final NUL');
    if (nul === start) {
      if (nul !== buf.length - 1) throw new EnvelopeError(QQ_ENVELOPE_FORMAT, 'data after the final NUL of the envelope');
      break;
    }
    fields.push(buf.subarray(start, nul).toString('utf8'));
    start = nul + 1;
  }
  const [first, ...rest] = fields;
  if (!first?.startsWith('F')) throw new EnvelopeError(QQ_ENVELOPE_FORMAT, 'envelope does not start with F<sender>');
  if (rest.length === 0) throw new EnvelopeError(QQ_ENVELOPE_FORMAT, 'envelope without recipients');
  const recipients: string[] = [];
  for (const f of rest) {
    if (!f.startsWith('T')) throw new EnvelopeError(QQ_ENVELOPE_FORMAT, `envelope field ${JSON.stringify(f.slice(0, 40))} is not T<recipient>`);
    recipients.push(f.slice(1));
  }
  return { sender: first.slice(1), recipients };
}

export function encodeEnvelope(envelope: QmailEnvelope): Buffer {
  return Buffer.from(`F${envelope.sender}\0${envelope.recipients.map((r) => `T${r}\0`).join('')}\0`, 'utf8');
}
