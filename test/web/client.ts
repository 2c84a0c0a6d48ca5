/** An HTTP client for web tests: a real server on 127.0.0.1, a cookie jar, form and JSON posts. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; base: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, base: `http://127.0.0.1:${port}` };
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  location: string | null;
}

export class WebClient {
  readonly base: string;
  readonly jar = new Map<string, string>();
  /** extra headers on every request (e.g. a foreign Origin) */
  headers: Record<string, string> = {};

  constructor(base: string) {
    this.base = base;
  }

  cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async request(
    method: string,
    path: string,
    init: { body?: string; type?: string; headers?: Record<string, string> } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = { ...this.headers, ...(init.headers ?? {}) };
    if (this.jar.size) headers.cookie = this.cookieHeader();
    if (init.type) headers['content-type'] = init.type;
    const r = await fetch(this.base + path, {
      method,
      headers,
      redirect: 'manual',
      ...(init.body !== undefined ? { body: init.body } : {}),
    });
    for (const c of r.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))) this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return {
      status: r.status,
      headers: r.headers,
      text: await r.text(),
      location: r.headers.get('location'),
    };
  }

  get(path: string, headers: Record<string, string> = {}): Promise<Reply> {
    return this.request('GET', path, { headers });
  }

  postForm(
    path: string,
    fields: Record<string, string>,
    headers: Record<string, string> = {},
  ): Promise<Reply> {
    return this.request('POST', path, {
      body: new URLSearchParams(fields).toString(),
      type: 'application/x-www-form-urlencoded',
      headers,
    });
  }

  postJson(path: string, value: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    return this.request('POST', path, { body: JSON.stringify(value), type: 'application/json', headers });
  }
}

/** The value of the first `<input name="_csrf">` in a page. */
export function csrfFrom(page: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(page);
  if (!m) throw new Error(`no CSRF field in page:\n${page.slice(0, 500)}`);
  return m[1]!;
}
