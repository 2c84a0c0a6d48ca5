/** The dashboard's HTTP side over a real socket: the live stream, its limits, and the Apply handshake's refusals. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { createDashboard } from '../../src/dashboard/server.ts';
import { MemoryHistoryStore } from '../../src/history/store.ts';
import { type Config, loadConfigFile } from '../../src/policy/config.ts';
import { PolicyStore } from '../../src/policy/store.ts';
import { tempDir } from '../support/fixtures.ts';
import { makeRecord } from '../history/store-contract.ts';

async function setup(maxStreams = 2) {
  const dir = tempDir('checkid-dash-srv-');
  const file = join(dir, 'checkid.yaml');
  writeFileSync(file, 'siq:\n  tag_score: 50\n');
  const policy = new PolicyStore<Config>({ path: file, prepare: (c) => c });
  await policy.load();
  const history = new MemoryHistoryStore();
  const dashboard = createDashboard({ history, policy, applyTarget: { file, overlay: false }, users: [], listen: '127.0.0.1:0', maxStreams });
  const server: Server = createServer(dashboard.handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // the pre-session cookie and token, as the page gets them
  const state = await fetch(`${base}/api/state`);
  const cookie = (state.headers.getSetCookie()[0] ?? '').split(';')[0]!;
  const { csrf } = (await state.json()) as { csrf: string };
  const post = (path: string, body: unknown) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json', cookie, 'x-csrf-token': csrf, origin: base }, body: JSON.stringify(body) });
  return {
    file,
    policy,
    history,
    dashboard,
    base,
    post,
    async close() {
      dashboard.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      policy.close();
    },
  };
}

/** Reads Server-Sent Events from a fetch body until `count` "verdict" events came. */
async function events(body: ReadableStream<Uint8Array>, count: number): Promise<unknown[]> {
  const out: unknown[] = [];
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  while (out.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      if (/^event: verdict$/m.test(block)) out.push(JSON.parse(/^data: (.*)$/m.exec(block)![1]!));
    }
  }
  await reader.cancel();
  return out;
}

test('the live stream sends each stored record; past maxStreams a client gets 503', async () => {
  const t = await setup(2);
  try {
    const a = await fetch(`${t.base}/api/stream`);
    const b = await fetch(`${t.base}/api/stream`);
    assert.equal(a.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    assert.match(a.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    const c = await fetch(`${t.base}/api/stream`, { headers: { accept: 'application/json' } });
    assert.equal(c.status, 503);
    assert.equal(t.dashboard.streams(), 2);
    const gotA = events(a.body!, 2);
    const gotB = events(b.body!, 2);
    await t.history.append([makeRecord({ ip: '192.0.2.1' }), makeRecord({ ip: '192.0.2.2', action: 'REJECT' })]);
    assert.deepEqual(
      (await gotA).map((r) => (r as { ip: string }).ip),
      ['192.0.2.1', '192.0.2.2'],
    );
    assert.equal(((await gotB)[1] as { action: string }).action, 'REJECT');
    // each record comes with the sender it is counted under, the same in /api/recent (newest first)
    assert.deepEqual(
      (await gotA).map((r) => (r as { sender: string }).sender),
      ['example.com', 'example.com'],
    );
    await t.history.append([makeRecord({ ip: '192.0.2.3', mailFrom: '', identity: null, helo: 'MX.Example.NET' })]);
    const recent = (await (await fetch(`${t.base}/api/recent`)).json()) as { records: Array<{ ip: string; sender: string }> };
    assert.deepEqual(
      recent.records.map((r) => [r.ip, r.sender]),
      [
        ['192.0.2.3', 'mx.example.net'],
        ['192.0.2.2', 'example.com'],
        ['192.0.2.1', 'example.com'],
      ],
    );
  } finally {
    await t.close();
  }
});

test('Apply: nothing to change, unknown thresholds, a stale generation, an unknown confirmation are refused', async () => {
  const t = await setup();
  try {
    const same = await t.post('/api/apply', { candidate: { siqTagScore: 50 } });
    assert.equal(same.status, 400);
    assert.match(((await same.json()) as { error: string }).error, /nothing to change/);
    const unknown = await t.post('/api/apply', { candidate: { hook: '/tmp/x.ts' } });
    assert.equal(unknown.status, 400);
    const stale = await t.post('/api/apply', { candidate: { siqTagScore: 40 }, generation: 99 });
    assert.equal(stale.status, 409);
    assert.match(((await stale.json()) as { error: string }).error, /reloaded since/);
    const bogus = await t.post('/api/apply/confirm', { confirm: 'made-up' });
    assert.equal(bogus.status, 409);
    // a confirmation outlived by a reload is refused too
    const ok = await t.post('/api/apply', { candidate: { siqTagScore: 40 }, generation: 1 });
    assert.equal(ok.status, 200);
    const { confirm } = (await ok.json()) as { confirm: string };
    await t.policy.reload();
    const late = await t.post('/api/apply/confirm', { confirm });
    assert.equal(late.status, 409);
    assert.equal(loadConfigFile(t.file).siq.tagScore, 50);
    // the what-if answers for a bad candidate with 400, not 500
    const bad = await t.post('/api/whatif', { candidate: { siqRejectScore: 500 } });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /siq.reject_score must be a whole number from -1 to 100/);
    const window = await fetch(`${t.base}/api/charts?hours=-3`, { headers: { accept: 'application/json' } });
    assert.equal(window.status, 400);
  } finally {
    await t.close();
  }
});

test('an open dashboard on a non-loopback address is refused at creation', () => {
  assert.throws(
    () =>
      createDashboard({
        history: new MemoryHistoryStore(),
        policy: { current: () => ({ config: {} as Config, generation: 1, loadedAt: 0 }), reload: async () => ({ ok: true, generation: 1 }) },
        applyTarget: null,
        users: [],
        listen: '0.0.0.0:8025',
      }),
    /not on a loopback address/,
  );
});
