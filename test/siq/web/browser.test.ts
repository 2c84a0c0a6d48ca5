/**
 * The postmaster pages in real headless Chromium (playwright-core): sign up, sign out, sign in,
 * register the source IP, edit the profile and watch the live preview follow each edit, save,
 * then a real SIQ query over UDP from that source IP (SiqClient against the running SiqServer)
 * answers with the previewed score and shows in "Recent queries". A second browser without
 * JavaScript previews through the form.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { SiqClient } from '../../../src/siq/client.ts';
import { cloneProfile, DEFAULT_PROFILE, parseProfile } from '../../../src/siq/server/profile.ts';
import { browserSkip, launchBrowser } from '../../support/browser.ts';
import { type Fixture, startFixture } from './fixture.ts';

const skip = browserSkip();
let f: Fixture;
let browser: Browser;
let udp: { address: string; port: number; close(): Promise<void> };

before(async () => {
  if (skip) return;
  f = await startFixture();
  udp = await f.siq.listenUdp('127.0.0.1', 0);
  browser = await launchBrowser();
});

after(async () => {
  if (skip) return;
  await browser?.close();
  await udp?.close();
  await f?.close();
});

const PASSWORD = 'violet staple 42 ferry';
const EMAIL = 'postmaster@sender.example';

/** Collects console errors and CSP violations of a page. */
function watchConsole(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  return problems;
}

/**
 * The previewed score once the page shows one (the script mirrors it in data-preview-score),
 * other than `notEqualTo`. Waits with a CSS selector: the page's CSP forbids evaluated strings.
 */
async function previewScore(page: Page, notEqualTo?: string): Promise<string> {
  const not = notEqualTo === undefined ? '' : `:not([data-preview-score="${notEqualTo}"])`;
  await page
    .locator(`#profile-form[data-preview-score]:not([data-preview-score=""])${not}`)
    .waitFor({ timeout: 10_000 });
  const shown = (await page.locator('#preview-score').textContent())!.trim();
  const data = await page.locator('#profile-form').getAttribute('data-preview-score');
  assert.equal(shown, data);
  return shown;
}

test('Chromium: sign up → sign in → register IP → live preview while editing → save → a real SIQ query shows in recent queries', {
  skip,
}, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = watchConsole(page);
  const base = f.base;

  // sign up (signs in), then sign out and in again
  await page.goto(`${base}/signup`);
  await page.getByLabel('E-mail address').fill(EMAIL);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Password again').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(`${base}/ips?done=welcome`);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${base}/signin`);
  assert.equal(await page.getByRole('link', { name: 'Source IPs' }).count(), 0);
  await page.getByLabel('E-mail address').fill(EMAIL);
  await page.getByLabel('Password').fill('a wrong password here');
  await page.getByRole('button', { name: 'Sign in' }).click();
  assert.match((await page.getByRole('alert').textContent())!, /Wrong user name or password/);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/`);
  assert.match((await page.locator('main').textContent())!, new RegExp(`Signed in as ${EMAIL}`));
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'checkid_session')!;
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');

  // register the source IP the SIQ client will query from
  await page.getByRole('link', { name: 'Source IPs' }).click();
  await page.getByLabel('IP address').fill('127.0.0.1');
  await page.getByRole('button', { name: 'Register' }).click();
  await page.waitForURL(`${base}/ips?done=ip-added`);
  assert.match((await page.locator('#ips').textContent())!, /127\.0\.0\.1/);
  const account = (await f.store.getAccountByEmail(EMAIL))!;
  assert.equal(await f.store.accountIdForIp('127.0.0.1'), account.id);

  // the profile: type an IP and domain, then edit weights and watch the preview follow
  await page.getByRole('link', { name: 'Scoring profile' }).click();
  await page.waitForURL(`${base}/profile`);
  assert.equal(await page.locator('#preview-button').isHidden(), true, 'with JavaScript the preview is live');
  const ip = '192.0.2.66';
  const domain = 'sender.example';
  await page.getByLabel('IP address').fill(ip);
  await page.getByLabel('Domain (MAIL FROM)').fill(domain);
  const first = await previewScore(page);
  const defaults = await f.siq.explain(account.id, ip, domain, DEFAULT_PROFILE);
  assert.equal(first, String(defaults.score.score), 'the preview shows what the server computes');
  assert.match((await page.locator('#preview-breakdown').textContent())!, /dnsbl\s*fail\s*-45/);

  const edited = cloneProfile(DEFAULT_PROFILE);
  edited.checks.dnsbl.fail = -5;
  await page.getByLabel('dnsbl: points on fail').fill('-5');
  const second = await previewScore(page, first);
  const expectSecond = (await f.siq.explain(account.id, ip, domain, edited)).score.score;
  assert.equal(second, String(expectSecond));
  assert.notEqual(second, first);

  edited.checks.spf_pass.enabled = false;
  await page.getByLabel('spf_pass enabled').uncheck();
  const third = await previewScore(page, second);
  const expectThird = (await f.siq.explain(account.id, ip, domain, edited)).score.score;
  assert.equal(third, String(expectThird));
  assert.notEqual(third, second);
  assert.doesNotMatch((await page.locator('#preview-breakdown').textContent())!, /spf_pass/);
  assert.equal(await f.store.getProfile(account.id), null, 'previewing saves nothing');

  // a bad value: no score, the field marked
  await page.getByLabel('Base score (0..100)').fill('500');
  await page.locator('#base[aria-invalid="true"]').waitFor({ timeout: 10_000 });
  assert.match((await page.locator('#preview-status').textContent())!, /base must be 0\.\.100, not 500/);
  await page.getByLabel('Base score (0..100)').fill('50');
  assert.equal(await previewScore(page), third);

  await page.getByRole('button', { name: 'Save profile' }).click();
  await page.waitForURL(/\/profile\?done=saved/);
  assert.match((await page.getByRole('status').first().textContent())!, /The profile is saved/);
  const stored = (await f.store.getProfile(account.id)) as {
    checks: Record<string, { fail: number; enabled: boolean }>;
  };
  assert.equal(stored.checks.dnsbl!.fail, -5);
  assert.equal(stored.checks.spf_pass!.enabled, false);

  // a real SIQ query over UDP from the registered source IP
  const client = new SiqClient({ servers: [udp.address], cache: false, timeoutMs: 5000 });
  const r = await client.query({ ip, domain });
  client.close();
  assert.equal(r.status, 'answer', JSON.stringify(r));
  assert.equal(
    r.status === 'answer' && r.reply.score,
    Number(third),
    'the saved profile scores as previewed',
  );
  await f.siq.flushLog();

  await page.getByRole('link', { name: 'Recent queries' }).click();
  await page.waitForURL(`${base}/queries`);
  const row = page.locator('#queries tbody tr').first();
  const cells = await row.locator('td').allTextContents();
  assert.equal(cells[1], ip);
  assert.equal(cells[2], domain);
  assert.equal(cells[3], third);
  assert.doesNotMatch(cells[4]!, /spf_pass/);
  assert.match(cells[4]!, /dnsbl=fail/);

  // the one expected failure: the wrong password's 401 page
  const unexpected = problems.filter((p) => !/status of 401/.test(p));
  assert.deepEqual(unexpected, [], 'no console errors or CSP violations');
  await context.close();
});

test('Chromium without JavaScript: the Preview button posts the form and the page shows the score', {
  skip,
}, async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${f.base}/signin`);
  await page.getByLabel('E-mail address').fill(EMAIL);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${f.base}/`);
  const account = (await f.store.getAccountByEmail(EMAIL))!;
  const storedBefore = await f.store.getProfile(account.id);
  await page.goto(`${f.base}/profile`);
  await page.getByLabel('IP address').fill('192.0.2.10');
  await page.getByLabel('Domain (MAIL FROM)').fill('sender.example');
  await page.getByLabel('Base score (0..100)').fill('20');
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.waitForURL(`${f.base}/profile/preview`);
  assert.match(
    (await page.locator('#preview-status').textContent())!,
    /192\.0\.2\.10 with sender\.example would score/,
  );
  const parsed = parseProfile(await f.store.getProfile(account.id), DEFAULT_PROFILE);
  assert.ok(parsed.ok);
  const saved = { ...parsed.profile, base: 20 };
  const expected = (await f.siq.explain(account.id, '192.0.2.10', 'sender.example', saved)).score.score;
  assert.equal((await page.locator('#preview-score').textContent())!.trim(), String(expected));
  assert.equal(
    await page.getByLabel('Base score (0..100)').inputValue(),
    '20',
    'the edit is kept, not saved',
  );
  assert.deepEqual(await f.store.getProfile(account.id), storedBefore, 'previewing saved nothing');
  await context.close();
});
