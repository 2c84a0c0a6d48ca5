/** The SIQ postmaster pages as HTML (escaped by the `html` template); no logic beyond layout. */
import type { Visit } from '../../../web/gate.ts';
import { html, type SafeHtml } from '../../../web/html.ts';
import { MAX_PASSWORD_LENGTH } from '../../../web/password.ts';
import { CHECK_DESCRIPTIONS, CHECK_GROUP, CHECK_IDS, type SiqProfile } from '../profile.ts';
import type { SiqScore } from '../score.ts';
import type { SiqAccount, SiqLists, SiqQueryLogEntry } from '../store.ts';

export type Nav = 'overview' | 'ips' | 'key' | 'profile' | 'lists' | 'queries' | 'account' | null;

const NAV: Array<[Exclude<Nav, null>, string, string]> = [
  ['overview', '/', 'Overview'],
  ['ips', '/ips', 'Source IPs'],
  ['key', '/key', 'API key'],
  ['profile', '/profile', 'Scoring profile'],
  ['lists', '/lists', 'Allow/block lists'],
  ['queries', '/queries', 'Recent queries'],
  ['account', '/account', 'Account'],
];

export function layout(
  visit: Visit,
  title: string,
  body: SafeHtml,
  current: Nav = null,
  signup = true,
): SafeHtml {
  const signedIn = visit.userId !== null;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · SIQ</title>
<link rel="stylesheet" href="/static/siq.css">
<link rel="icon" href="/static/icon.svg" type="image/svg+xml">
<script type="module" src="/static/siq.js"></script>
</head>
<body>
<a class="visually-hidden" href="#main">Skip to content</a>
<header>
<span class="brand">SIQ reputation server</span>
${
  signedIn
    ? html`<nav aria-label="Main"><ul>${NAV.map(
        ([id, href, label]) =>
          html`<li><a href="${href}"${id === current ? html` aria-current="page"` : ''}>${label}</a></li>`,
      )}</ul></nav>
<form method="post" action="/signout">${visit.csrfField()}<button type="submit">Sign out</button></form>`
    : html`<nav aria-label="Main"><ul><li><a href="/signin">Sign in</a></li>${signup ? html`<li><a href="/signup">Sign up</a></li>` : ''}</ul></nav>`
}
</header>
<main id="main">
${body}
</main>
</body>
</html>
`;
}

/** A message after a redirect, chosen from fixed texts (never echoing the URL). */
export function notice(text: string | undefined): SafeHtml {
  return text ? html`<p class="notice" role="status">${text}</p>` : html``;
}

export function errorLine(text: string | undefined, id = 'form-error'): SafeHtml {
  return text ? html`<p class="error" role="alert" id="${id}">${text}</p>` : html``;
}

export function signupPage(
  visit: Visit,
  opts: { error?: string; email?: string; minLength: number },
): SafeHtml {
  return html`<h1>Create a postmaster account</h1>
<p>An account lets your mail gateways ask this server for reputation scores (SIQ) with your own
scoring profile and lists, and send reports on the mail they accepted and rejected.</p>
${errorLine(opts.error)}
<form method="post" action="/signup" class="stack">
${visit.csrfField()}
<label for="email">E-mail address</label>
<input id="email" name="email" type="email" required autocomplete="email" maxlength="254" value="${opts.email ?? ''}"${opts.error ? html` aria-describedby="form-error"` : ''}>
<label for="password">Password</label>
<input id="password" name="password" type="password" required autocomplete="new-password" minlength="${opts.minLength}" maxlength="${MAX_PASSWORD_LENGTH}" aria-describedby="password-hint">
<span class="hint" id="password-hint">At least ${opts.minLength} characters; a few unrelated words make a good one.</span>
<label for="password2">Password again</label>
<input id="password2" name="password2" type="password" required autocomplete="new-password" maxlength="${MAX_PASSWORD_LENGTH}">
<button type="submit">Create account</button>
</form>
<p>Have an account? <a href="/signin">Sign in</a>.</p>`;
}

export function overviewPage(a: {
  account: SiqAccount;
  ips: string[];
  siqAddress: string | undefined;
  queries: number;
}): SafeHtml {
  const server = a.siqAddress ?? 'this-server:6262';
  return html`<h1>Overview</h1>
<p>Signed in as <strong>${a.account.email}</strong>.</p>
<ol>
<li>${
    a.ips.length
      ? html`<a href="/ips">${a.ips.length} source ${a.ips.length === 1 ? 'IP' : 'IPs'}</a> registered: ${a.ips.join(', ')}.`
      : html`<a href="/ips">Register the IP addresses</a> your mail gateways query from: queries from other addresses get the server's default profile.`
  }</li>
<li>Point your gateways at <code>${server}</code>. For checkid:
<pre><code>siq:
  servers: ["${server}"]</code></pre></li>
<li>Tune <a href="/profile">the scoring profile</a> and <a href="/lists">your allow and block lists</a>.</li>
<li>Let your gateways report what they accepted and rejected with <a href="/key">your API key</a>.</li>
</ol>
<p><a href="/queries">${a.queries ? `${a.queries} recent queries` : 'No queries yet'}</a>.</p>`;
}

export function ipsPage(
  visit: Visit,
  opts: { ips: string[]; error?: string; value?: string; done?: string; max: number },
): SafeHtml {
  return html`<h1>Source IPs</h1>
<p>Queries from these addresses are scored with your profile and lists, and show in your recent
queries. Register each address your gateways send SIQ queries from (IPv4 or IPv6); an address
can belong to one account only.</p>
${notice(opts.done)}
${errorLine(opts.error)}
<form method="post" action="/ips" class="inline">
${visit.csrfField()}
<label for="ip">IP address <input id="ip" name="ip" required maxlength="64" placeholder="192.0.2.25 or 2001:db8::25" value="${opts.value ?? ''}"${opts.error ? html` aria-invalid="true" aria-describedby="form-error"` : ''}></label>
<button type="submit">Register</button>
</form>
${
  opts.ips.length
    ? html`<table id="ips">
<caption class="visually-hidden">Registered source IPs</caption>
<thead><tr><th scope="col">Address</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
<tbody>${opts.ips.map(
        (ip) =>
          html`<tr><td><code>${ip}</code></td><td><form method="post" action="/ips/remove">${visit.csrfField()}<input type="hidden" name="ip" value="${ip}"><button type="submit" aria-label="Remove ${ip}">Remove</button></form></td></tr>`,
      )}</tbody>
</table>`
    : html`<p id="ips">No source IPs yet.</p>`
}
<p class="hint">At most ${opts.max} addresses per account.</p>`;
}

export function keyPage(
  visit: Visit,
  opts: { apiKey: string; reportUrl: string | undefined; done?: string },
): SafeHtml {
  return html`<h1>API key</h1>
<p>Your gateways send reports (how many messages from an IP or domain they accepted and
rejected) with this key. Keep it secret: whoever has it can report in your name.</p>
${notice(opts.done)}
<p><label for="api-key">Your key</label><br>
<input id="api-key" class="key" readonly size="70" value="${opts.apiKey}" aria-describedby="key-hint"></p>
<p class="hint" id="key-hint">${
    opts.reportUrl
      ? html`Reports go to <code>${opts.reportUrl}</code> with the header <code>Authorization: Bearer &lt;key&gt;</code>.`
      : 'Give it to your gateways as the report key.'
  }</p>
<form method="post" action="/key/regenerate">
${visit.csrfField()}
<p>A new key replaces this one at once: gateways still using the old key are refused until they get the new one.</p>
<button type="submit">Make a new key</button>
</form>`;
}

function listTable(visit: Visit, name: 'allow' | 'block', entries: string[]): SafeHtml {
  const title = name === 'allow' ? 'Allow list' : 'Block list';
  return html`<h2 id="${name}-heading">${title}</h2>
${
  entries.length
    ? html`<table id="${name}-list" aria-labelledby="${name}-heading">
<thead><tr><th scope="col">Entry</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
<tbody>${entries.map(
        (e) =>
          html`<tr><td><code>${e}</code></td><td><form method="post" action="/lists/remove">${visit.csrfField()}<input type="hidden" name="list" value="${name}"><input type="hidden" name="entry" value="${e}"><button type="submit" aria-label="Remove ${e} from the ${name} list">Remove</button></form></td></tr>`,
      )}</tbody>
</table>`
    : html`<p id="${name}-list">Empty.</p>`
}`;
}

export function listsPage(
  visit: Visit,
  opts: { lists: SiqLists; error?: string; value?: string; list?: string; done?: string; max: number },
): SafeHtml {
  return html`<h1>Allow and block lists</h1>
<p>Entries apply to queries from your source IPs: an IP address (<code>192.0.2.1</code>), a network
(<code>198.51.100.0/24</code>, <code>2001:db8::/32</code>), a domain (<code>example.com</code>, that name
only) or <code>.example.com</code> (every name under example.com, not example.com itself). The profile's
<em>local_ip</em> and <em>local_domain</em> checks decide how much a match counts.</p>
${notice(opts.done)}
${errorLine(opts.error)}
<form method="post" action="/lists/add" class="inline">
${visit.csrfField()}
<label for="entry">Entry <input id="entry" name="entry" required maxlength="255" value="${opts.value ?? ''}"${opts.error ? html` aria-invalid="true" aria-describedby="form-error"` : ''}></label>
<label for="list">List <select id="list" name="list">
<option value="block"${opts.list === 'allow' ? '' : html` selected`}>Block</option>
<option value="allow"${opts.list === 'allow' ? html` selected` : ''}>Allow</option>
</select></label>
<button type="submit">Add</button>
</form>
${listTable(visit, 'allow', opts.lists.allow)}
${listTable(visit, 'block', opts.lists.block)}
<p class="hint">At most ${opts.max} entries per list. Adding an entry to one list takes it off the other.</p>`;
}

export function queriesPage(entries: SiqQueryLogEntry[], limit: number): SafeHtml {
  return html`<h1>Recent queries</h1>
<p>The newest ${limit} SIQ queries from your source IPs, with the score this server answered.
<a href="/queries">Refresh</a>.</p>
${
  entries.length
    ? html`<table id="queries">
<thead><tr><th scope="col">Time (UTC)</th><th scope="col">IP</th><th scope="col">Domain</th><th scope="col" class="num">Score</th><th scope="col">Why</th></tr></thead>
<tbody>${entries.map(
        (q) =>
          html`<tr><td>${new Date(q.at).toISOString().replace('T', ' ').slice(0, 19)}</td><td><code>${q.ip}</code></td><td>${q.domain || html`<span class="hint">(IP only)</span>`}</td><td class="num">${scoreLabel(q.score)}</td><td><code>${q.text}</code></td></tr>`,
      )}</tbody>
</table>`
    : html`<p id="queries">No queries from your source IPs yet.</p>`
}`;
}

export function scoreLabel(score: number): string {
  if (score >= 0) return String(score);
  return (
    { '-1': 'unknown', '-2': 'tempfail', '-3': 'redirect', '-4': 'error' }[String(score)] ?? String(score)
  );
}

export interface PreviewView {
  ip: string;
  domain: string;
  /** the result, or why there is none */
  result?: SiqScore;
  message?: string;
}

function previewSection(p: PreviewView): SafeHtml {
  const r = p.result;
  return html`<section class="preview" id="preview" aria-labelledby="preview-heading">
<h2 id="preview-heading">Preview</h2>
<p id="preview-status" role="status" aria-live="polite">${
    p.message ??
    (r
      ? html`${p.ip}${p.domain ? html` with ${p.domain}` : ''} would score`
      : 'Type an IP address (and a domain) to see what it would score.')
  }</p>
<p><output id="preview-score" class="score" for="preview_ip preview_domain">${r ? scoreLabel(r.score) : '–'}</output>
<span id="preview-sub" class="hint">${r ? `IP ${scoreLabel(r.ipScore)}, domain ${scoreLabel(r.domainScore)}, relation ${scoreLabel(r.relScore)}, confidence ${r.confidence}, TTL ${r.ttl} s` : ''}</span></p>
<table id="preview-breakdown"${r ? '' : html` hidden`}>
<thead><tr><th scope="col">Check</th><th scope="col">Outcome</th><th scope="col" class="num">Points</th><th scope="col">Detail</th></tr></thead>
<tbody>${(r?.contributions ?? []).map(
    (c) =>
      html`<tr><td>${c.check}</td><td>${c.outcome}</td><td class="num">${c.delta > 0 ? `+${c.delta}` : String(c.delta)}</td><td>${c.detail}</td></tr>`,
  )}</tbody>
</table>
</section>`;
}

export function profilePage(
  visit: Visit,
  opts: {
    profile: SiqProfile;
    /** raw field values to show instead of the profile's (after a refused save) */
    fields?: URLSearchParams;
    problems?: Map<string, string>;
    error?: string;
    done?: string;
    preview: PreviewView;
  },
): SafeHtml {
  const f = opts.fields;
  const value = (name: string, v: number) => f?.get(name) ?? String(v);
  const bad = (name: string) => opts.problems?.get(name);
  const num = (name: string, v: number, label: string, min: number, max: number, visible = false) => {
    const id = name.replaceAll('.', '-');
    const problem = bad(name);
    return html`<label${visible ? '' : html` class="visually-hidden"`} for="${id}">${label}</label>${visible ? html`<br>` : ''}<input id="${id}" name="${name}" type="number" min="${min}" max="${max}" step="1" required value="${value(name, v)}"${problem ? html` aria-invalid="true" aria-describedby="${id}-error"` : ''}>${problem ? html`<br><span class="error" id="${id}-error">${problem}</span>` : ''}`;
  };
  const enabled = (id: string, on: boolean) => (f ? f.get(`checks.${id}.enabled`) === 'on' : on);
  const p = opts.profile;
  return html`<h1>Scoring profile</h1>
<p>Each query starts at the base score; every enabled check that has an answer adds its points for
pass, fail or neutral; the sum is clamped to 0..100. Queries from your source IPs use this
profile. The preview below shows what an IP and domain would score with the values in the form,
before you save.</p>
${notice(opts.done)}
${errorLine(opts.error)}
<form method="post" action="/profile" id="profile-form">
${visit.csrfField()}
<fieldset>
<legend>Preview an IP and domain</legend>
<div class="inline">
<label for="preview_ip">IP address <input id="preview_ip" name="preview_ip" maxlength="64" placeholder="192.0.2.1" value="${opts.preview.ip}" autocomplete="off"></label>
<label for="preview_domain">Domain (MAIL FROM) <input id="preview_domain" name="preview_domain" maxlength="255" placeholder="example.com" value="${opts.preview.domain}" autocomplete="off"></label>
<button type="submit" formaction="/profile/preview" id="preview-button">Preview</button>
</div>
</fieldset>
${previewSection(opts.preview)}
<fieldset>
<legend>Scores</legend>
<div class="inline">
<span>${num('base', p.base, 'Base score (0..100)', 0, 100, true)}</span>
<span>${num('ttl', p.ttl, 'Answer TTL, seconds (0..86400)', 0, 86_400, true)}</span>
</div>
<table id="checks">
<caption class="visually-hidden">Checks and their points</caption>
<thead><tr><th scope="col">Check</th><th scope="col">On</th><th scope="col" class="num">Pass</th><th scope="col" class="num">Fail</th><th scope="col" class="num">Neutral</th><th scope="col">What it looks at</th></tr></thead>
<tbody>${CHECK_IDS.map((id) => {
    const c = p.checks[id];
    return html`<tr>
<th scope="row">${id}<br><span class="hint">${CHECK_GROUP[id]} score</span></th>
<td><input type="checkbox" id="checks-${id}-enabled" name="checks.${id}.enabled"${enabled(id, c.enabled) ? html` checked` : ''}><label class="visually-hidden" for="checks-${id}-enabled">${id} enabled</label></td>
<td class="num">${num(`checks.${id}.pass`, c.pass, `${id}: points on pass`, -100, 100)}</td>
<td class="num">${num(`checks.${id}.fail`, c.fail, `${id}: points on fail`, -100, 100)}</td>
<td class="num">${num(`checks.${id}.neutral`, c.neutral, `${id}: points on neutral`, -100, 100)}</td>
<td>${CHECK_DESCRIPTIONS[id]}</td>
</tr>`;
  })}</tbody>
</table>
</fieldset>
<button type="submit" id="save-button">Save profile</button>
<button type="submit" formaction="/profile/reset" formnovalidate>Reset to the server's defaults</button>
</form>`;
}

export function accountPage(
  visit: Visit,
  opts: { account: SiqAccount; error?: string; done?: string; minLength: number },
): SafeHtml {
  return html`<h1>Account</h1>
<p>E-mail: <strong>${opts.account.email}</strong>. Created ${new Date(opts.account.createdAt).toISOString().slice(0, 10)}.</p>
${notice(opts.done)}
${errorLine(opts.error)}
<h2>Change the password</h2>
<form method="post" action="/account/password" class="stack">
${visit.csrfField()}
<label for="current">Current password</label>
<input id="current" name="current" type="password" required autocomplete="current-password" maxlength="${MAX_PASSWORD_LENGTH}">
<label for="new-password">New password</label>
<input id="new-password" name="password" type="password" required autocomplete="new-password" minlength="${opts.minLength}" maxlength="${MAX_PASSWORD_LENGTH}">
<label for="new-password2">New password again</label>
<input id="new-password2" name="password2" type="password" required autocomplete="new-password" maxlength="${MAX_PASSWORD_LENGTH}">
<button type="submit">Change password</button>
</form>
<p class="hint">Changing the password signs out every other session of this account.</p>
<h2>Delete the account</h2>
<form method="post" action="/account/delete" class="stack">
${visit.csrfField()}
<p>Deletes the account with its source IPs, profile, lists, query log and reports. Queries from
its IPs then get the server's default profile.</p>
<label for="delete-password">Password</label>
<input id="delete-password" name="current" type="password" required autocomplete="current-password" maxlength="${MAX_PASSWORD_LENGTH}">
<button type="submit">Delete my account</button>
</form>`;
}
