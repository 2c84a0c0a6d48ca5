/**
 * The dashboard (docs/dashboard.md): one page that shows the verdicts as they are made (Server-
 * Sent Events), counts by action over time, score distributions, and the threshold what-if over
 * the recorded history, with an Apply (and confirm) that changes the live policy through the
 * config file and the PolicyStore's reload.
 *
 * Security: every answer carries the web kit's headers (a CSP with no inline script: the page's
 * JavaScript and CSS are files); every POST is origin- and CSRF-checked (src/web/gate.ts). With
 * users configured the gate asks for a sign-in; without, the dashboard serves loopback only and
 * refuses any Host header that is not a loopback name (a DNS-rebinding page cannot reach it).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../engine/engine.ts';
import type { RecorderStats } from '../history/recorder.ts';
import { senderOf, type VerdictRecord } from '../history/record.ts';
import type { HistoryStore } from '../history/store.ts';
import { type Candidate, candidateOf, whatIf, withCandidate } from '../history/whatif.ts';
import type { Config } from '../policy/config.ts';
import type { ReloadOutcome } from '../policy/store.ts';
import { htmlPage, SignInGate, type Visit } from '../web/gate.ts';
import { html, type SafeHtml } from '../web/html.ts';
import { verifyPasswordOrDummy } from '../web/password.ts';
import { sendAsset, sendHtml, sendJson, type StaticAsset, staticAsset, WebError } from '../web/respond.ts';
import { Router } from '../web/router.ts';
import { ApplyError, applyToFile, changesOf, type KeyChange, parseCandidate } from './apply.ts';
import { type DashboardUser, isLoopback, listenHost } from './config.ts';
import { actionsChart, actionsOverTime, distributionCharts } from './views.ts';

export interface DashboardPolicy {
  current(): { config: Config; generation: number; loadedAt: number };
  reload(): Promise<ReloadOutcome>;
}

export interface DashboardOptions {
  history: HistoryStore;
  policy: DashboardPolicy;
  /** the file Apply edits: the config file, or the overlay in the state directory; null = none */
  applyTarget: { file: string; overlay: boolean } | null;
  /** why Apply is not possible, when applyTarget is null */
  applyUnavailable?: string;
  /** empty: no sign-in (loopback only) */
  users: DashboardUser[];
  /** the address it listens on (HOST:PORT), for the loopback Host check */
  listen: string;
  secure?: boolean;
  trustedProxies?: string[];
  publicOrigin?: string;
  recorder?: () => RecorderStats;
  log?: Logger;
  now?: () => number;
  /** records the what-if and the charts look at, newest first (default 50,000) */
  maxRecords?: number;
  /** live stream clients at once (default 50) */
  maxStreams?: number;
}

const ASSET_DIR = new URL('./assets/', import.meta.url);

function loadAssets(): Map<string, StaticAsset> {
  const out = new Map<string, StaticAsset>();
  for (const [name, type] of [
    ['dashboard.js', 'text/javascript; charset=utf-8'],
    ['dashboard.css', 'text/css; charset=utf-8'],
  ] as const) {
    out.set(name, staticAsset(readFileSync(new URL(name, ASSET_DIR)), type));
  }
  return out;
}

/** A pending Apply, waiting for its confirmation. */
interface Pending {
  candidate: Candidate;
  generation: number;
  changes: KeyChange[];
  expires: number;
  user: string | null;
}

const CONFIRM_MS = 5 * 60_000;
const HOURS_MAX = 24 * 366;

export interface Dashboard {
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** open live streams now */
  streams(): number;
  /** ends the live streams (before the server closes) */
  close(): void;
}

/** A record as the page gets it: with the sender it is counted under (the what-if's, record.ts). */
const shown = (r: VerdictRecord): VerdictRecord & { sender: string } => ({ ...r, sender: senderOf(r) });

export function createDashboard(o: DashboardOptions): Dashboard {
  const now = o.now ?? Date.now;
  const log = o.log ?? (() => {});
  const maxRecords = o.maxRecords ?? 50_000;
  const maxStreams = o.maxStreams ?? 50;
  const assets = loadAssets();
  const open = o.users.length === 0;
  if (open && !isLoopback(listenHost(o.listen))) {
    throw new Error(`the dashboard on ${o.listen} is not on a loopback address: configure dashboard.users (sign-in) or listen on 127.0.0.1`);
  }
  const users = new Map(o.users.map((u) => [u.name.toLowerCase(), u]));
  const gate = new SignInGate({
    title: 'the checkid dashboard',
    verify: async (name, password) => {
      const u = users.get(name.toLowerCase());
      return (await verifyPasswordOrDummy(password, u?.passwordHash)) && u ? u.name : null;
    },
    sessions: { cookieName: 'checkid_dashboard', secure: o.secure ?? false },
    secure: o.secure ?? false,
    ...(o.publicOrigin ? { publicOrigin: o.publicOrigin } : {}),
    ...(o.trustedProxies ? { trustedProxies: o.trustedProxies } : {}),
    isPublic: (path) => open || path.startsWith('/static/') || path === '/favicon.ico',
    layout: ({ title, body }) => page(title, body),
    onError: (err) => log('error', 'dashboard: internal error', { error: (err as Error).message, stack: (err as Error).stack }),
  });
  const pending = new Map<string, Pending>();
  const streams = new Set<ServerResponse>();
  let applying: Promise<unknown> = Promise.resolve();

  // records for the what-if and charts: read once, kept fresh by the live feed, re-read after a while
  let snapshot: { records: VerdictRecord[]; at: number } | null = null;
  const unsubscribe = o.history.subscribe((r) => {
    if (snapshot) {
      snapshot.records.push(r);
      if (snapshot.records.length > maxRecords) snapshot.records.splice(0, snapshot.records.length - maxRecords);
    }
    const line = `event: verdict\ndata: ${JSON.stringify(shown(r))}\n\n`;
    for (const res of streams) {
      // a client that does not read is dropped rather than buffered without end
      if (res.writableLength > 1_000_000) {
        res.destroy();
        streams.delete(res);
        continue;
      }
      res.write(line);
    }
  });
  const heartbeat = setInterval(() => {
    for (const res of streams) res.write(': keep-alive\n\n');
  }, 15_000);
  heartbeat.unref();

  async function records(): Promise<VerdictRecord[]> {
    if (!snapshot || now() - snapshot.at > 60_000) snapshot = { records: await o.history.recent(maxRecords), at: now() };
    return snapshot.records;
  }

  function windowOf(url: URL): number {
    const h = Number(url.searchParams.get('hours') ?? '24');
    if (!Number.isFinite(h) || h <= 0 || h > HOURS_MAX) throw new WebError(400, `hours must be a number from 1 to ${HOURS_MAX}`);
    return h * 3_600_000;
  }

  function hostAllowed(req: IncomingMessage): boolean {
    if (!open) return true;
    // without sign-in only loopback names: a DNS-rebinding page would send its own host name
    const host = String(req.headers.host ?? '');
    const m = /^(?:\[([^\]]+)\]|([^:]+))(?::\d{1,5})?$/.exec(host);
    return m !== null && isLoopback(m[1] ?? m[2]!);
  }

  function policyState() {
    const p = o.policy.current();
    return {
      generation: p.generation,
      loadedAt: p.loadedAt,
      source: p.config.source || '(embedded defaults)',
      thresholds: candidateOf(p.config),
      apply: o.applyTarget ? { file: o.applyTarget.file, overlay: o.applyTarget.overlay } : { unavailable: o.applyUnavailable ?? 'no config file' },
    };
  }

  const router = new Router<(visit: Visit, params: Record<string, string>) => Promise<void> | void>();
  router.get('/', (visit) => {
    const body = html`<header class="top">
<h1>checkid dashboard</h1>
<p id="policy-line" class="muted">policy: loading…</p>
${visit.userId ? html`<form method="post" action="/signout" class="signout">${visit.csrfField()}<span>${visit.userId}</span> <button type="submit">Sign out</button></form>` : ''}
</header>
<section id="live-section">
<h2>Live verdicts <span id="live-status" class="muted">connecting…</span></h2>
<table id="live"><thead><tr><th>time (UTC)</th><th>client</th><th>sender</th><th>stage</th><th>action</th><th>reason</th><th>facts</th></tr></thead><tbody></tbody></table>
</section>
<section id="charts-section">
<h2>History <label>window <select id="window"><option value="1">1 hour</option><option value="24" selected>24 hours</option><option value="168">7 days</option><option value="720">30 days</option></select></label> <span id="history-count" class="muted"></span></h2>
<div class="charts">
<div id="chart-actions" class="chart"></div>
<div id="chart-siq" class="chart"></div>
<div id="chart-ratings" class="chart"></div>
<div id="chart-dnsbl" class="chart"></div>
</div>
</section>
<section id="whatif-section">
<h2>Threshold what-if</h2>
<p class="muted">Over the recorded verdicts in the window: what the policy would have decided with these thresholds. Scores at or below a SIQ threshold are tagged or rejected (-1 = off); a DNS list score at or above the threshold is rejected; rating thresholds apply to authenticated identities (empty = not used; all empty = off).</p>
<form id="whatif-form" class="thresholds">
<fieldset><legend>SIQ</legend>
<label for="siqTagScore">tag at or below</label><input type="range" id="siqTagScore-range" min="-1" max="100" step="1" data-for="siqTagScore"><input type="number" id="siqTagScore" name="siqTagScore" min="-1" max="100" step="1">
<label for="siqRejectScore">reject at or below</label><input type="range" id="siqRejectScore-range" min="-1" max="100" step="1" data-for="siqRejectScore"><input type="number" id="siqRejectScore" name="siqRejectScore" min="-1" max="100" step="1">
</fieldset>
<fieldset><legend>DNS lists</legend>
<label for="dnsblThreshold">reject at score ≥</label><input type="range" id="dnsblThreshold-range" min="1" max="20" step="1" data-for="dnsblThreshold"><input type="number" id="dnsblThreshold" name="dnsblThreshold" min="-1000" max="1000" step="1">
</fieldset>
<fieldset><legend>Ratings: reject when</legend>
<label for="ratingsReject-average">average ≤</label><input type="number" id="ratingsReject-average" step="any">
<label for="ratingsReject-min">min ≤</label><input type="number" id="ratingsReject-min" step="any">
<label for="ratingsReject-max">max ≤</label><input type="number" id="ratingsReject-max" step="any">
</fieldset>
<fieldset><legend>Ratings: accept when</legend>
<label for="ratingsAccept-average">average ≥</label><input type="number" id="ratingsAccept-average" step="any">
<label for="ratingsAccept-min">min ≥</label><input type="number" id="ratingsAccept-min" step="any">
<label for="ratingsAccept-max">max ≥</label><input type="number" id="ratingsAccept-max" step="any">
</fieldset>
<p><button type="button" id="reset">Reset to the policy</button> <button type="button" id="apply">Apply…</button></p>
</form>
<div id="confirm" class="confirm" hidden>
<h3>Change the live policy?</h3>
<ul id="confirm-changes"></ul>
<p id="confirm-impact"></p>
<p id="confirm-file" class="muted"></p>
<p><button type="button" id="confirm-yes">Yes, apply</button> <button type="button" id="confirm-no">Cancel</button></p>
</div>
<p id="apply-result" role="status"></p>
<div id="whatif-result">
<table id="whatif-totals" class="totals"><tbody>
<tr><th>verdicts looked at</th><td id="wi-records">–</td></tr>
<tr><th>would change</th><td id="wi-changed">–</td></tr>
<tr><th>newly rejected</th><td id="wi-newly-rejected">–</td></tr>
<tr><th>no longer rejected</th><td id="wi-no-longer-rejected">–</td></tr>
<tr><th>newly tagged</th><td id="wi-newly-tagged">–</td></tr>
<tr><th>no longer tagged</th><td id="wi-no-longer-tagged">–</td></tr>
<tr><th>newly accepted</th><td id="wi-newly-accepted">–</td></tr>
<tr><th>outcome unknown (checks never ran)</th><td id="wi-unknown">–</td></tr>
<tr><th>rejected: before → after</th><td id="wi-rejected">–</td></tr>
<tr><th>tagged: before → after</th><td id="wi-tagged">–</td></tr>
</tbody></table>
<div class="tops">
<table id="wi-senders"><caption>Senders most affected</caption><thead><tr><th>sender</th><th>verdicts</th><th>newly rejected</th><th>newly tagged</th><th>no longer rejected</th><th>changed</th></tr></thead><tbody></tbody></table>
<table id="wi-clients"><caption>Client IPs most affected</caption><thead><tr><th>client</th><th>verdicts</th><th>newly rejected</th><th>newly tagged</th><th>no longer rejected</th><th>changed</th></tr></thead><tbody></tbody></table>
</div>
<table id="wi-samples"><caption>Latest verdicts that would change</caption><thead><tr><th>time (UTC)</th><th>client</th><th>sender</th><th>was</th><th>would be</th></tr></thead><tbody></tbody></table>
</div>
</section>`;
    sendPage(visit, 'checkid dashboard', body);
  });

  // browsers ask for it on their own: no icon, and no 404 in their console
  router.get('/favicon.ico', (visit) => {
    visit.res.writeHead(204);
    visit.res.end();
  });

  router.get('/static/:name', (visit, params) => {
    const a = assets.get(params.name!);
    if (!a) throw new WebError(404, 'no such file');
    sendAsset(visit.res, a);
  });

  router.get('/api/state', async (visit) => {
    sendJson(visit.res, 200, {
      csrf: visit.csrfToken(),
      user: visit.userId,
      policy: policyState(),
      history: { store: o.history.name, count: await o.history.count(), ...(o.recorder ? { recorder: o.recorder() } : {}) },
      now: now(),
    });
  });

  router.get('/api/recent', async (visit) => {
    const limit = Math.min(1000, Math.max(1, Number(visit.url.searchParams.get('limit') ?? '100') || 100));
    const list = await o.history.recent(limit);
    sendJson(visit.res, 200, { records: list.reverse().map(shown) });
  });

  router.get('/api/stream', (visit) => {
    const { req, res } = visit;
    if (streams.size >= maxStreams) throw new WebError(503, 'too many live streams open; close a dashboard tab', { 'retry-after': '30' });
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'x-accel-buffering': 'no' });
    res.write('retry: 3000\n\n');
    streams.add(res);
    const done = () => streams.delete(res);
    req.on('close', done);
    res.on('close', done);
  });

  router.get('/api/charts', async (visit) => {
    const windowMs = windowOf(visit.url);
    const t = now();
    const list = (await records()).filter((r) => r.time >= t - windowMs);
    const thresholds = candidateOf(o.policy.current().config);
    sendJson(visit.res, 200, {
      records: list.length,
      actions: actionsChart(actionsOverTime(list, t, windowMs)),
      ...distributionCharts(list, thresholds),
    });
  });

  router.post('/api/whatif', async (visit) => {
    const body = (await visit.json()) as { candidate?: unknown; hours?: unknown };
    const candidate = candidateFrom(body?.candidate);
    const windowMs = windowOf(new URL(`http://x/?hours=${encodeURIComponent(String(body?.hours ?? '24'))}`));
    const t = now();
    const list = (await records()).filter((r) => r.time >= t - windowMs);
    const config = o.policy.current().config;
    const report = whatIf(list, config, candidate, { top: 15, samples: 30 });
    sendJson(visit.res, 200, {
      report,
      charts: distributionCharts(list, candidateOf(withCandidate(config, candidate))),
      generation: o.policy.current().generation,
    });
  });

  router.post('/api/apply', async (visit) => {
    const body = (await visit.json()) as { candidate?: unknown; generation?: unknown; hours?: unknown };
    if (!o.applyTarget) throw new WebError(409, `cannot apply: ${o.applyUnavailable ?? 'no config file'}`);
    const candidate = candidateFrom(body?.candidate);
    const p = o.policy.current();
    if (body?.generation !== undefined && body.generation !== p.generation) {
      throw new WebError(409, `the policy was reloaded since this page computed the what-if (generation ${String(body.generation)} → ${p.generation}): look at the numbers again`);
    }
    const changes = changesOf(p.config, candidate);
    if (changes.length === 0) throw new WebError(400, 'nothing to change: these are the thresholds in force');
    for (const [k, v] of pending) if (v.expires < now()) pending.delete(k);
    if (pending.size > 100) pending.clear();
    const token = randomBytes(18).toString('base64url');
    pending.set(token, { candidate, generation: p.generation, changes, expires: now() + CONFIRM_MS, user: visit.userId });
    const windowMs = windowOf(new URL(`http://x/?hours=${encodeURIComponent(String(body?.hours ?? '24'))}`));
    const list = (await records()).filter((r) => r.time >= now() - windowMs);
    const totals = whatIf(list, p.config, candidate, { top: 0, samples: 0 }).totals;
    sendJson(visit.res, 200, { confirm: token, changes, file: o.applyTarget.file, overlay: o.applyTarget.overlay, totals, expiresInS: CONFIRM_MS / 1000 });
  });

  router.post('/api/apply/confirm', async (visit) => {
    const body = (await visit.json()) as { confirm?: unknown };
    const token = typeof body?.confirm === 'string' ? body.confirm : '';
    const p = pending.get(token);
    pending.delete(token);
    if (!p || p.expires < now() || p.user !== visit.userId) throw new WebError(409, 'this confirmation is unknown or has expired: press Apply again');
    if (!o.applyTarget) throw new WebError(409, `cannot apply: ${o.applyUnavailable ?? 'no config file'}`);
    const target = o.applyTarget;
    // one Apply at a time: two confirmations must not interleave their file edits
    const run = applying.then(async () => {
      const live = o.policy.current();
      if (live.generation !== p.generation) {
        throw new WebError(409, `the policy was reloaded since Apply was pressed (generation ${p.generation} → ${live.generation}): look at the numbers again`);
      }
      try {
        return await applyToFile({ ...target, reload: () => o.policy.reload() }, live.config, p.candidate);
      } catch (err) {
        if (err instanceof ApplyError) throw new WebError(err.status, err.message);
        throw err;
      }
    });
    applying = run.catch(() => {});
    const outcome = await run;
    log(outcome.ok ? 'info' : 'error', outcome.ok ? 'dashboard: thresholds applied' : 'dashboard: thresholds not applied', {
      user: visit.userId,
      file: outcome.file,
      changes: p.changes.map((c) => `${c.key}: ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`),
      ...(outcome.ok ? { generation: outcome.generation } : { error: outcome.error, restored: outcome.restored }),
    });
    sendJson(visit.res, outcome.ok ? 200 : 500, { ...outcome, policy: policyState() });
  });

  const handler = gate.handler(async (visit) => {
    if (!hostAllowed(visit.req)) throw new WebError(421, 'this dashboard answers only to a loopback host name (localhost, 127.0.0.1, [::1])');
    const m = router.match(visit.req.method ?? 'GET', visit.url.pathname);
    if (m.status === 404) throw new WebError(404, 'no such page');
    if (m.status === 405) throw new WebError(405, `use ${m.allow.join(' or ')}`, { allow: m.allow.join(', ') });
    await m.handler(visit, m.params);
  });

  return {
    handler,
    streams: () => streams.size,
    close() {
      clearInterval(heartbeat);
      unsubscribe();
      for (const res of streams) res.end();
      streams.clear();
    },
  };
}

function candidateFrom(raw: unknown): Candidate {
  try {
    return parseCandidate(raw ?? {});
  } catch (err) {
    if (err instanceof ApplyError) throw new WebError(400, err.message);
    throw err;
  }
}

/** The dashboard's stylesheet and script, in every page's head. */
const PAGE_HEAD = html`<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/dashboard.js" defer></script>
`;

function page(title: string, body: SafeHtml): SafeHtml {
  return htmlPage(title, body, PAGE_HEAD);
}

function sendPage(visit: Visit, title: string, body: SafeHtml): void {
  sendHtml(visit.res, 200, page(title, body));
}
