// The checkid dashboard's page script (served as a file: the page's CSP allows no inline script).
// Reads /api/state, /api/recent, /api/charts; listens to /api/stream (Server-Sent Events);
// posts the what-if and Apply with the CSRF token in X-CSRF-Token. Text goes in with textContent
// only; charts are SVG documents from the server, parsed and imported (no innerHTML).
(() => {
  const $ = (id) => document.getElementById(id);
  const LIVE_ROWS = 200;
  const state = { csrf: '', policy: null, hours: 24, lastReport: null, pendingConfirm: null };

  async function api(path, body) {
    const init = { headers: { accept: 'application/json' }, credentials: 'same-origin' };
    if (body !== undefined) {
      init.method = 'POST';
      init.headers['content-type'] = 'application/json';
      init.headers['x-csrf-token'] = state.csrf;
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    if (!res.ok) {
      const err = new Error((data && (data.error || data.message)) || `${res.status} ${res.statusText}`);
      err.status = res.status;
      err.data = data;
      throw err;
    }
    return data;
  }

  function svgInto(id, text) {
    const el = $(id);
    if (!el || typeof text !== 'string') return;
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
    const svg = doc.documentElement;
    if (svg?.nodeName !== 'svg') return;
    el.replaceChildren(document.importNode(svg, true));
  }

  function cell(tr, text, className) {
    const td = document.createElement('td');
    td.textContent = text === null || text === undefined ? '' : String(text);
    if (className) td.className = className;
    tr.appendChild(td);
    return td;
  }

  const time = (t) => new Date(t).toISOString().slice(11, 19);

  function verdictRow(r) {
    const tr = document.createElement('tr');
    tr.dataset.ip = r.ip;
    tr.dataset.action = r.action;
    tr.dataset.reason = r.reason;
    tr.className = `action-${r.action}`;
    cell(tr, time(r.time));
    cell(tr, r.ip);
    cell(tr, r.sender); // computed by the server (history/record.ts senderOf)
    cell(tr, r.stage);
    cell(tr, r.subjectTagged ? `${r.action} (tagged)` : r.action, 'action');
    const why = document.createElement('td');
    const details = document.createElement('details');
    const summary = document.createElement('summary');
    summary.textContent = r.reason;
    details.appendChild(summary);
    const reply = document.createElement('p');
    reply.className = 'reply';
    reply.textContent = [r.reply.code, r.reply.xcode, r.reply.text].filter((x) => x !== '').join(' ');
    details.appendChild(reply);
    const list = document.createElement('ul');
    for (const line of r.explanation) {
      const li = document.createElement('li');
      li.textContent = line;
      list.appendChild(li);
    }
    details.appendChild(list);
    why.appendChild(details);
    tr.appendChild(why);
    cell(tr, r.facts, 'facts');
    return tr;
  }

  function addVerdict(r, live) {
    const body = $('live').tBodies[0];
    const row = verdictRow(r);
    if (live) row.classList.add('fresh');
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > LIVE_ROWS) body.deleteRow(body.rows.length - 1);
  }

  function fmt(v) {
    if (v === null || v === undefined) return 'off';
    if (typeof v === 'number') return String(v);
    return Object.entries(v)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
  }

  function renderPolicy() {
    const p = state.policy;
    if (!p) return;
    const t = p.thresholds;
    $('policy-line').textContent =
      `policy generation ${p.generation} from ${p.source}: SIQ tag ≤ ${t.siqTagScore}, SIQ reject ≤ ${t.siqRejectScore}, DNS lists reject ≥ ${t.dnsblThreshold}, ratings reject ${fmt(t.ratingsReject)}, accept ${fmt(t.ratingsAccept)}`;
    $('apply').disabled = Boolean(p.apply.unavailable);
    $('apply').title = p.apply.unavailable ? `cannot apply: ${p.apply.unavailable}` : `writes ${p.apply.file}`;
  }

  function setInputs(t) {
    for (const k of ['siqTagScore', 'siqRejectScore', 'dnsblThreshold']) {
      $(k).value = String(t[k]);
      const range = $(`${k}-range`);
      if (range) range.value = String(t[k]);
    }
    for (const k of ['ratingsReject', 'ratingsAccept']) {
      for (const f of ['average', 'min', 'max']) {
        const v = t[k] ? t[k][f] : undefined;
        $(`${k}-${f}`).value = v === undefined ? '' : String(v);
      }
    }
  }

  function candidate() {
    const c = {};
    for (const k of ['siqTagScore', 'siqRejectScore', 'dnsblThreshold']) {
      const v = $(k).value.trim();
      if (v !== '') c[k] = Number(v);
    }
    for (const k of ['ratingsReject', 'ratingsAccept']) {
      const t = {};
      for (const f of ['average', 'min', 'max']) {
        const v = $(`${k}-${f}`).value.trim();
        if (v !== '') t[f] = Number(v);
      }
      c[k] = Object.keys(t).length > 0 ? t : null;
    }
    return c;
  }

  async function loadState() {
    const s = await api('/api/state');
    state.csrf = s.csrf;
    state.policy = s.policy;
    $('history-count').textContent = `${s.history.count} verdicts kept (${s.history.store})`;
    renderPolicy();
    return s;
  }

  async function loadCharts() {
    const c = await api(`/api/charts?hours=${state.hours}`);
    svgInto('chart-actions', c.actions);
    // the distributions come with the what-if's markers (runWhatIf); without one yet, these
    if (!state.lastReport) {
      svgInto('chart-siq', c.siq);
      svgInto('chart-ratings', c.ratings);
      svgInto('chart-dnsbl', c.dnsbl);
    }
    $('charts-section').dataset.records = String(c.records);
  }

  function groupRows(id, rows) {
    const body = $(id).tBodies[0];
    body.replaceChildren();
    for (const g of rows) {
      const tr = document.createElement('tr');
      tr.dataset.key = g.key;
      cell(tr, g.key);
      cell(tr, g.records);
      cell(tr, g.newlyRejected);
      cell(tr, g.newlyTagged);
      cell(tr, g.noLongerRejected);
      cell(tr, g.changed);
      body.appendChild(tr);
    }
  }

  const outcome = (o) => (o.action === null ? 'unknown' : `${o.action}${o.tagged ? ' (tagged)' : ''}${o.reason ? ` ${o.reason}` : ''}`);

  function renderReport(r) {
    const t = r.totals;
    $('wi-records').textContent = String(t.records);
    $('wi-changed').textContent = String(t.changed);
    $('wi-newly-rejected').textContent = String(t.newlyRejected);
    $('wi-no-longer-rejected').textContent = String(t.noLongerRejected);
    $('wi-newly-tagged').textContent = String(t.newlyTagged);
    $('wi-no-longer-tagged').textContent = String(t.noLongerTagged);
    $('wi-newly-accepted').textContent = String(t.newlyAccepted);
    $('wi-unknown').textContent = String(t.unknown);
    $('wi-rejected').textContent = `${r.rejectedBefore} → ${r.rejectedAfter}`;
    $('wi-tagged').textContent = `${r.taggedBefore} → ${r.taggedAfter}`;
    groupRows('wi-senders', r.senders);
    groupRows('wi-clients', r.clients);
    const body = $('wi-samples').tBodies[0];
    body.replaceChildren();
    for (const s of r.samples) {
      const tr = document.createElement('tr');
      cell(tr, time(s.time));
      cell(tr, s.ip);
      cell(tr, s.sender);
      cell(tr, outcome(s.before));
      cell(tr, outcome(s.after));
      body.appendChild(tr);
    }
  }

  let whatifTimer = null;
  let whatifSeq = 0;
  function scheduleWhatIf(delay) {
    clearTimeout(whatifTimer);
    whatifTimer = setTimeout(runWhatIf, delay === undefined ? 200 : delay);
  }

  async function runWhatIf() {
    const seq = ++whatifSeq;
    const section = $('whatif-section');
    section.setAttribute('aria-busy', 'true');
    try {
      const res = await api('/api/whatif', { candidate: candidate(), hours: state.hours });
      if (seq !== whatifSeq) return;
      state.lastReport = res.report;
      renderReport(res.report);
      svgInto('chart-siq', res.charts.siq);
      svgInto('chart-ratings', res.charts.ratings);
      svgInto('chart-dnsbl', res.charts.dnsbl);
      section.dataset.generation = String(res.generation);
      section.dataset.ready = String(seq);
      $('apply-result').textContent = $('apply-result').dataset.sticky ? $('apply-result').textContent : '';
    } catch (err) {
      $('apply-result').textContent = `What-if: ${err.message}`;
    } finally {
      if (seq === whatifSeq) section.removeAttribute('aria-busy');
    }
  }

  function showConfirm(p) {
    state.pendingConfirm = p.confirm;
    const list = $('confirm-changes');
    list.replaceChildren();
    for (const c of p.changes) {
      const li = document.createElement('li');
      li.textContent = `${c.key}: ${fmt(c.from)} → ${fmt(c.to)}`;
      list.appendChild(li);
    }
    const t = p.totals;
    $('confirm-impact').textContent = `Over the ${t.records} verdicts in the window: ${t.newlyRejected} newly rejected, ${t.noLongerRejected} no longer rejected, ${t.newlyTagged} newly tagged, ${t.noLongerTagged} no longer tagged, ${t.newlyAccepted} newly accepted.`;
    $('confirm-file').textContent = p.overlay ? `Writes the overlay ${p.file} (checkid runs without a config file).` : `Writes ${p.file}; the policy reloads as after an edit.`;
    $('confirm').hidden = false;
    $('confirm-yes').focus();
  }

  async function apply() {
    const result = $('apply-result');
    delete result.dataset.sticky;
    result.textContent = '';
    try {
      const p = await api('/api/apply', { candidate: candidate(), generation: state.policy.generation, hours: state.hours });
      showConfirm(p);
    } catch (err) {
      result.textContent = `Not applied: ${err.message}`;
      result.className = 'error';
    }
  }

  async function confirmApply() {
    const result = $('apply-result');
    const token = state.pendingConfirm;
    state.pendingConfirm = null;
    $('confirm').hidden = true;
    try {
      const o = await api('/api/apply/confirm', { confirm: token });
      state.policy = o.policy;
      renderPolicy();
      setInputs(o.policy.thresholds);
      result.textContent = `Applied: policy generation ${o.generation} is live (${o.changes.map((c) => `${c.key} ${fmt(c.to)}`).join(', ')}).`;
      result.className = 'ok';
      result.dataset.sticky = '1';
      result.dataset.generation = String(o.generation);
    } catch (err) {
      const d = err.data || {};
      result.textContent = d.ok === false ? `Reload failed, the policy in force is unchanged${d.restored ? ' and the file was restored' : ''}: ${d.error}` : `Not applied: ${err.message}`;
      result.className = 'error';
      result.dataset.sticky = '1';
      if (d.policy) {
        state.policy = d.policy;
        renderPolicy();
      }
    }
    scheduleWhatIf(0);
    loadCharts().catch(() => {});
  }

  function connectLive() {
    const status = $('live-status');
    const es = new EventSource('/api/stream');
    es.addEventListener('open', () => {
      status.textContent = 'live';
      status.className = 'ok';
    });
    es.addEventListener('error', () => {
      status.textContent = 'reconnecting…';
      status.className = 'error';
    });
    let refresh = null;
    es.addEventListener('verdict', (ev) => {
      let r;
      try {
        r = JSON.parse(ev.data);
      } catch {
        return;
      }
      addVerdict(r, true);
      clearTimeout(refresh);
      refresh = setTimeout(() => {
        loadCharts().catch(() => {});
        scheduleWhatIf(0);
        loadState().catch(() => {});
      }, 1000);
    });
  }

  async function start() {
    await loadState();
    setInputs(state.policy.thresholds);
    const recent = await api('/api/recent?limit=100');
    for (const r of recent.records.slice().reverse()) addVerdict(r, false);
    connectLive();
    await loadCharts();
    await runWhatIf();
    for (const range of document.querySelectorAll('input[type=range][data-for]')) {
      range.addEventListener('input', () => {
        $(range.dataset.for).value = range.value;
        scheduleWhatIf();
      });
    }
    for (const input of document.querySelectorAll('#whatif-form input[type=number]')) {
      input.addEventListener('input', () => {
        const range = $(`${input.id}-range`);
        if (range) range.value = input.value;
        scheduleWhatIf();
      });
    }
    $('window').addEventListener('change', () => {
      state.hours = Number($('window').value);
      state.lastReport = null;
      loadCharts().catch(() => {});
      scheduleWhatIf(0);
    });
    $('reset').addEventListener('click', () => {
      setInputs(state.policy.thresholds);
      scheduleWhatIf(0);
    });
    $('apply').addEventListener('click', apply);
    $('confirm-yes').addEventListener('click', confirmApply);
    $('confirm-no').addEventListener('click', () => {
      state.pendingConfirm = null;
      $('confirm').hidden = true;
      $('apply-result').textContent = 'Cancelled: nothing changed.';
      $('apply-result').className = '';
    });
    document.body.dataset.ready = 'true';
  }

  document.addEventListener('DOMContentLoaded', () => {
    // the sign-in page shares the layout (and so this script): nothing to do there
    if (!$('live')) return;
    start().catch((err) => {
      const p = $('policy-line');
      if (p) p.textContent = `The dashboard could not load: ${err.message}`;
    });
  });
})();
