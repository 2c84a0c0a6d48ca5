import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { StubResolver } from '../../src/dns/stub.ts';

const script = new URL('../../scripts/dns-server.ts', import.meta.url).pathname;
let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'checkid-dns-script-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('scripts/dns-server.ts serves a zonedata file until SIGTERM, then prints its stats', async () => {
  const zoneFile = join(dir, 'zone.yaml');
  writeFileSync(
    zoneFile,
    [
      '---',
      'description: first scenario',
      'zonedata:',
      '  mail.example.com:',
      '    - A: 192.0.2.10',
      '    - TXT: v=spf1 a -all',
      '---',
      'zonedata:',
      '  other.example.com:',
      '    - MX: [10, mail.example.com]',
      '',
    ].join('\n'),
  );
  const child = spawn(process.execPath, [script, '--zone', zoneFile, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const iterator = lines[Symbol.asyncIterator]();
  const first = JSON.parse((await iterator.next()).value as string) as { listening: string };
  assert.match(first.listening, /^127\.0\.0\.1:\d+$/);

  const resolver = new StubResolver({ servers: [first.listening], timeoutMs: 5000 });
  try {
    assert.deepEqual(await resolver.query('mail.example.com', 'TXT'), {
      status: 'ok',
      records: [['v=spf1 a -all']],
      ttl: 300,
      authenticated: false,
    });
    const mx = await resolver.query('other.example.com', 'MX');
    assert.deepEqual(mx.status === 'ok' && mx.records, [{ preference: 10, exchange: 'mail.example.com' }]);
    assert.equal((await resolver.query('nowhere.example.com', 'A')).status, 'nxdomain');
  } finally {
    await resolver.close();
  }

  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const last = JSON.parse((await iterator.next()).value as string) as { stats: { udp: number; tcp: number } };
  assert.equal(last.stats.udp, 3);
  assert.equal(last.stats.tcp, 0);
  assert.equal(await exited, 0);
});

test('scripts/dns-server.ts refuses bad arguments with exit status 2', () => {
  const r = spawnSync(process.execPath, [script, '--listen', '127.0.0.1:0'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--zone is required/);
  const bad = spawnSync(process.execPath, [script, '--zone', 'x.yaml', '--listen', 'nowhere'], {
    encoding: 'utf8',
  });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /bad --listen/);
});
