/**
 * The readsocket protocol between Exim ACLs and checkid (docs/adapters/exim.md).
 *
 * Request (what `${readsocket{...}{REQUEST}}` sends): `name=value` lines, ended by an empty line
 * or by the end of the stream (Exim half-closes after writing). Names: stage (connect, helo,
 * mail, rcpt, data, quit), session (any string naming one SMTP connection), ip, helo, id, sender,
 * recipient, recipients (comma-separated, as Exim's $recipients), queue_id, headers (the
 * header block, base64 as `${base64:$message_headers_raw}` gives it). Unknown names are ignored.
 *
 * Response: one line of `key="value"` pairs that Exim's `${extract{key}{...}}` reads, then the
 * server closes the connection:
 *   action="REJECT" message="550 5.7.1 text" reason="..." add_header="" remove_header=""
 * action is ACCEPT, CONTINUE, FILTER, REJECT, DEFER, DISCARD. message is the SMTP reply (code,
 * enhanced code, text) for the ACL's `message =`; add_header the header lines ready for
 * `add_header =` (each line starting `:at_start:`, newline-separated, continuation lines folded
 * with a tab); remove_header a colon-separated list of header names for `remove_header =`.
 */

export class ReadsocketProtocolError extends Error {
  override name = 'ReadsocketProtocolError';
}

export const READSOCKET_STAGES = ['connect', 'helo', 'mail', 'rcpt', 'data', 'quit'] as const;
export type ReadsocketStage = (typeof READSOCKET_STAGES)[number];

export interface ReadsocketRequest {
  stage: ReadsocketStage;
  session?: string;
  ip: string;
  helo?: string;
  id?: string;
  sender?: string;
  recipient?: string;
  recipients?: string[];
  queueId?: string;
  /** the raw header block (decoded from base64) */
  headers?: string;
}

/** Parses a whole request. Throws ReadsocketProtocolError for a request that cannot be answered. */
export function parseReadsocketRequest(text: string): ReadsocketRequest {
  const fields = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '') {
      if (fields.size > 0) break;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new ReadsocketProtocolError(`request line without name=value: ${JSON.stringify(line.slice(0, 60))}`);
    fields.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1));
  }
  const stage = (fields.get('stage') ?? '').trim().toLowerCase();
  if (!(READSOCKET_STAGES as readonly string[]).includes(stage)) {
    throw new ReadsocketProtocolError(`stage must be one of ${READSOCKET_STAGES.join(', ')}; got ${JSON.stringify(stage.slice(0, 60))}`);
  }
  const req: ReadsocketRequest = { stage: stage as ReadsocketStage, ip: (fields.get('ip') ?? '').trim() };
  const opt = (name: string) => {
    const v = fields.get(name);
    return v === undefined ? undefined : v.trim();
  };
  const session = opt('session');
  if (session) req.session = session;
  const helo = opt('helo');
  if (helo) req.helo = helo;
  const id = opt('id');
  if (id) req.id = id;
  const sender = fields.get('sender');
  if (sender !== undefined) req.sender = sender.trim().replace(/^<(.*)>$/s, '$1');
  const recipient = opt('recipient');
  if (recipient) req.recipient = recipient.replace(/^<(.*)>$/s, '$1');
  const recipients = opt('recipients');
  if (recipients) req.recipients = recipients.split(',').map((r) => r.trim().replace(/^<(.*)>$/s, '$1')).filter((r) => r !== '');
  const queueId = opt('queue_id');
  if (queueId) req.queueId = queueId;
  const headers = opt('headers');
  if (headers) {
    // one class of base64 and white space, then the padding: linear (the old /^[…\s]*=*\s*$/ took
    // quadratic time over a long run of white space followed by a character that is not base64)
    if (!/^[A-Za-z0-9+/\s]*(?:=+\s*)?$/.test(headers)) throw new ReadsocketProtocolError('headers must be base64, as Exim\'s base64 operator gives it');
    req.headers = Buffer.from(headers, 'base64').toString('utf8');
  }
  return req;
}

/** Quotes a value for Exim's ${extract}: double quotes, with \\ \" \n \t escapes; no other controls. */
export function eximQuote(value: string): string {
  const clean = value
    .replace(/\r\n/g, '\n')
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, ' ')
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/\n/g, '\\n')
    .replace(/\t/g, '\\t');
  return `"${clean}"`;
}

/** The response line: the pairs in order, then a newline. */
export function encodeReadsocketResponse(pairs: Array<[string, string]>): string {
  return `${pairs.map(([k, v]) => `${k}=${eximQuote(v)}`).join(' ')}\n`;
}

/** Reads a response line back (for tests and clients): Exim's ${extract} rules. */
export function decodeReadsocketResponse(line: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))/gy;
  let m: RegExpExecArray | null;
  for (m = re.exec(line); m; m = re.exec(line)) {
    const value = m[2] !== undefined ? m[2].replace(/\\(.)/g, (_, c: string) => ({ n: '\n', t: '\t', r: '\r' })[c] ?? c) : m[3]!;
    out.set(m[1]!.toLowerCase(), value);
  }
  return out;
}
