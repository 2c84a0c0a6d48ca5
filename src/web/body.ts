/**
 * Request bodies with limits: the size (by Content-Length first, then while reading), the media
 * type, and for forms the number of fields. Errors are `WebError`s (413, 415, 400).
 */
import type { IncomingMessage } from 'node:http';
import { WebError } from './respond.ts';

export interface BodyLimits {
  /** bytes (default 64 KiB) */
  maxBytes?: number;
  /** form fields (default 200) */
  maxFields?: number;
}

export async function readBody(req: IncomingMessage, maxBytes = 64 * 1024): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    req.resume();
    throw new WebError(413, `request body over ${maxBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      req.resume();
      throw new WebError(413, `request body over ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The media type of the request, lower case, without parameters ('' when absent). */
export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Parses an application/x-www-form-urlencoded body. */
export function parseForm(text: string, maxFields = 200): URLSearchParams {
  let fields = text.length === 0 ? 0 : 1;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 38) fields++;
  if (fields > maxFields) throw new WebError(413, `more than ${maxFields} form fields`);
  return new URLSearchParams(text);
}

export async function readForm(req: IncomingMessage, limits: BodyLimits = {}): Promise<URLSearchParams> {
  const type = mediaType(req);
  if (type !== 'application/x-www-form-urlencoded') {
    req.resume();
    throw new WebError(415, 'send the form as application/x-www-form-urlencoded');
  }
  const body = await readBody(req, limits.maxBytes);
  return parseForm(body.toString('utf8'), limits.maxFields);
}

export async function readJson(req: IncomingMessage, limits: BodyLimits = {}): Promise<unknown> {
  if (mediaType(req) !== 'application/json') {
    req.resume();
    throw new WebError(415, 'send JSON as application/json');
  }
  const body = await readBody(req, limits.maxBytes);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new WebError(400, `body is not JSON: ${(err as Error).message}`);
  }
}
