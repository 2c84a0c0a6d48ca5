/**
 * A tiny router: `get`/`post` with path patterns whose segments are literal or `:name`.
 * `match` answers the handler and the decoded parameters, or 404, or 405 with the allowed methods.
 */

export type Method = 'GET' | 'POST';

interface Route<H> {
  method: Method;
  parts: string[];
  handler: H;
}

export type RouteMatch<H> =
  | { status: 200; handler: H; params: Record<string, string> }
  | { status: 404 }
  | { status: 405; allow: string[] };

function split(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

export class Router<H> {
  private readonly routes: Route<H>[] = [];

  add(method: Method, pattern: string, handler: H): this {
    if (!pattern.startsWith('/')) throw new Error(`route pattern must start with "/": ${pattern}`);
    this.routes.push({ method, parts: split(pattern), handler });
    return this;
  }
  get(pattern: string, handler: H): this {
    return this.add('GET', pattern, handler);
  }
  post(pattern: string, handler: H): this {
    return this.add('POST', pattern, handler);
  }

  /** HEAD is answered by the GET route. */
  match(method: string, pathname: string): RouteMatch<H> {
    const segs = split(pathname);
    const want = method === 'HEAD' ? 'GET' : method;
    const allow = new Set<string>();
    let found: { handler: H; params: Record<string, string> } | null = null;
    for (const r of this.routes) {
      const params = matchParts(r.parts, segs);
      if (!params) continue;
      allow.add(r.method);
      if (r.method === 'GET') allow.add('HEAD');
      if (!found && r.method === want) found = { handler: r.handler, params };
    }
    if (found) return { status: 200, ...found };
    if (allow.size === 0) return { status: 404 };
    return { status: 405, allow: [...allow].sort() };
  }
}

function matchParts(parts: string[], segs: string[]): Record<string, string> | null {
  if (parts.length !== segs.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    let s: string;
    try {
      s = decodeURIComponent(segs[i]!);
    } catch {
      return null;
    }
    if (p.startsWith(':')) params[p.slice(1)] = s;
    else if (p !== s) return null;
  }
  return params;
}
