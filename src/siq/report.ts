/**
 * Gateway reports to a checkid SIQ server (docs/siq-server.md, "Reports"): after a verdict, the
 * gateway tells the server whether it accepted or rejected mail from an IP and MAIL FROM domain,
 * so the server's reports_ip and reports_domain checks learn from it.
 *
 *   const r = await sendSiqReport({
 *     url: 'http://siq.example.net:6263', apiKey: process.env.SIQ_API_KEY!,
 *     reports: [{ ip: '192.0.2.1', domain: 'sender.example', result: 'rejected' }],
 *   });
 *   if (!r.ok) log('SIQ report not sent', r.error);
 *
 * POST <url>/siq/report with `Authorization: Bearer <apiKey>`, JSON {"reports": [...]}; the
 * request must come from a source IP registered to the key's account. Never throws: the result
 * says whether the server recorded the reports. Reports are best effort; a gateway should not
 * hold mail for them (the default timeout is 2 s).
 */
export interface SiqReportItem {
  /** the SMTP client's address */
  ip?: string;
  /** the MAIL FROM domain (an address is cut to its domain); '' or absent for none */
  domain?: string;
  result: 'accepted' | 'rejected';
  /** messages this item stands for (default 1, at most 10000) */
  count?: number;
}

export interface SiqReportOptions {
  /** the server's HTTP base ("http://host:port") or the full report URL */
  url: string;
  apiKey: string;
  reports: readonly SiqReportItem[];
  /** ms for the whole request (default 2000) */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export type SiqReportResult =
  | { ok: true; recorded: number; status: number }
  | { ok: false; error: string; status?: number };

/** The URL reports go to: `url` itself when it ends in /siq/report, else `<url>/siq/report`. */
export function siqReportUrl(url: string): string {
  const u = new URL(url);
  if (!u.pathname.endsWith('/siq/report')) u.pathname = `${u.pathname.replace(/\/+$/, '')}/siq/report`;
  return u.toString();
}

function domainOf(d: string | undefined): string | undefined {
  if (!d) return undefined;
  const at = d.lastIndexOf('@');
  const out = (at >= 0 ? d.slice(at + 1) : d).replace(/^<|>$/g, '').trim().toLowerCase();
  return out === '' ? undefined : out;
}

export async function sendSiqReport(options: SiqReportOptions): Promise<SiqReportResult> {
  let target: string;
  try {
    target = siqReportUrl(options.url);
  } catch {
    return { ok: false, error: `not a URL: ${JSON.stringify(options.url)}` };
  }
  const reports = options.reports
    .map((r) => {
      const domain = domainOf(r.domain);
      return {
        ...(r.ip ? { ip: r.ip } : {}),
        ...(domain ? { domain } : {}),
        result: r.result,
        ...(r.count !== undefined ? { count: r.count } : {}),
      };
    })
    .filter((r) => r.ip || r.domain);
  if (reports.length === 0) return { ok: true, recorded: 0, status: 0 };
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 2000);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  try {
    const res = await fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${options.apiKey}` },
      body: JSON.stringify({ reports }),
      signal,
    });
    const text = await res.text();
    let body: { ok?: unknown; recorded?: unknown; error?: unknown } = {};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      // not JSON: reported below by status
    }
    if (res.ok && body.ok === true)
      return {
        ok: true,
        recorded: typeof body.recorded === 'number' ? body.recorded : 0,
        status: res.status,
      };
    const why = typeof body.error === 'string' ? body.error : text.slice(0, 200).trim() || res.statusText;
    return { ok: false, status: res.status, error: `SIQ report: HTTP ${res.status}: ${why}` };
  } catch (err) {
    const e = err as Error;
    if (e.name === 'TimeoutError')
      return {
        ok: false,
        error: `SIQ report: no answer from ${target} within ${options.timeoutMs ?? 2000} ms`,
      };
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    return { ok: false, error: `SIQ report: ${target}: ${cause?.code ?? cause?.message ?? e.message}` };
  }
}
