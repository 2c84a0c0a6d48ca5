// SIQ postmaster pages: the live preview on the profile page. Everything works without this
// file (the Preview button posts the form); with it, the score updates as you type. The page's
// CSP allows no inline script, so this is the only script, served from /static/siq.js as a module.

(() => {
  const form = document.getElementById('profile-form');
  if (!form) return;
  const status = document.getElementById('preview-status');
  const score = document.getElementById('preview-score');
  const sub = document.getElementById('preview-sub');
  const table = document.getElementById('preview-breakdown');
  const body = table.querySelector('tbody');
  const ipInput = document.getElementById('preview_ip');
  const domainInput = document.getElementById('preview_domain');
  const button = document.getElementById('preview-button');
  button.hidden = true; // the preview follows the form by itself now
  form.dataset.preview = 'live';

  const label = (n) =>
    n >= 0
      ? String(n)
      : { '-1': 'unknown', '-2': 'tempfail', '-3': 'redirect', '-4': 'error' }[String(n)] || String(n);
  let timer = 0;
  let sequence = 0;
  let controller = null;

  const cell = (row, text, className) => {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
  };

  const markProblems = (problems) => {
    for (const input of form.querySelectorAll('input[type="number"]')) {
      const problem = problems[input.name];
      if (problem) {
        input.setAttribute('aria-invalid', 'true');
        input.title = problem;
      } else if (input.getAttribute('aria-invalid') === 'true') {
        input.removeAttribute('aria-invalid');
        input.removeAttribute('title');
      }
    }
  };

  const show = (data) => {
    markProblems(data.problems || {});
    const r = data.result;
    body.replaceChildren();
    if (!r) {
      score.textContent = '–';
      sub.textContent = '';
      table.hidden = true;
      const problems = Object.entries(data.problems || {});
      status.textContent =
        data.message ||
        (problems.length
          ? `Fix ${problems.map(([k, v]) => `${k} (${v})`).join('; ')}`
          : 'Type an IP address (and a domain) to see what it would score.');
      form.dataset.previewScore = '';
      return;
    }
    status.textContent = `${data.ip}${data.domain ? ` with ${data.domain}` : ''} would score`;
    score.textContent = label(r.score);
    sub.textContent = `IP ${label(r.ipScore)}, domain ${label(r.domainScore)}, relation ${label(r.relScore)}, confidence ${r.confidence}, TTL ${r.ttl} s`;
    for (const c of r.contributions) {
      const row = document.createElement('tr');
      cell(row, c.check);
      cell(row, c.outcome);
      cell(row, c.delta > 0 ? `+${c.delta}` : String(c.delta), 'num');
      cell(row, c.detail);
      body.appendChild(row);
    }
    table.hidden = false;
    form.dataset.previewScore = String(r.score);
  };

  const run = async () => {
    const mine = ++sequence;
    if (ipInput.value.trim() === '') {
      show({ result: null, problems: {}, message: null });
      return;
    }
    if (controller) controller.abort();
    controller = new AbortController();
    form.setAttribute('aria-busy', 'true');
    try {
      const response = await fetch('/profile/preview', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams(new FormData(form)),
        signal: controller.signal,
      });
      const data = await response.json();
      if (mine !== sequence) return;
      if (!response.ok)
        show({
          result: null,
          problems: {},
          message: data.error || `The preview failed (${response.status}).`,
        });
      else show(data);
    } catch (err) {
      if (err.name !== 'AbortError' && mine === sequence)
        show({ result: null, problems: {}, message: `The preview failed: ${err.message}` });
    } finally {
      if (mine === sequence) form.removeAttribute('aria-busy');
    }
  };

  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(run, 250);
  };
  form.addEventListener('input', soon);
  form.addEventListener('change', soon);
  for (const input of [ipInput, domainInput]) {
    // Enter in the preview fields previews instead of saving the profile
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        clearTimeout(timer);
        run();
      }
    });
  }
  if (ipInput.value.trim() !== '') run();
})();
