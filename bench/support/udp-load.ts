/**
 * The C load generator (bench/tools/udp-load.c), compiled on first use with the system's cc into
 * a cache directory keyed by the source's hash. Without a C compiler the caller falls back to its
 * Node generator and says so in its JSON.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const source = new URL('../tools/udp-load.c', import.meta.url).pathname;

/** The path of the compiled generator, or an Error saying why there is none. */
export function udpLoadBinary(): string | Error {
  const text = readFileSync(source);
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'checkid-bench');
  const bin = join(dir, `udp-load-${hash}`);
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  for (const cc of [process.env.CC, 'cc', 'gcc', 'clang'].filter(Boolean) as string[]) {
    try {
      execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-pthread', '-o', bin, source], { stdio: 'pipe' });
      return bin;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      return new Error(`${cc} failed on ${source}: ${(e as { stderr?: Buffer }).stderr?.toString() ?? e}`);
    }
  }
  return new Error('no C compiler (cc, gcc or clang): apt-get install gcc');
}

/** Writes packets as the generator reads them: a 2-octet big-endian length, then the octets. */
export function writePacketFile(path: string, packets: readonly Uint8Array[]): void {
  const parts: Buffer[] = [];
  for (const p of packets) {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(p.length);
    parts.push(len, Buffer.from(p));
  }
  writeFileSync(path, Buffer.concat(parts));
}

export interface UdpLoadResult {
  rate: number;
  sent: number;
  answered: number;
  lost: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  generatorCpuMs: number;
}
