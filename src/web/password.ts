/**
 * Password hashing with a memory-hard KDF from node:crypto: Argon2id (RFC 9106) where this Node
 * has `crypto.argon2` (Node >= 24.7), else scrypt (RFC 7914). The result is one self-describing
 * PHC-style string, so the parameters can be raised later and old hashes still verify:
 *
 *   $argon2id$v=19$m=19456,t=2,p=1$<salt, base64 without padding>$<hash, base64 without padding>
 *   $scrypt$ln=17,r=8,p=1$<salt>$<hash>
 *
 * `verifyPassword` compares in constant time and refuses encoded strings whose parameters are
 * out of bounds (a damaged or hostile database cannot make us allocate gigabytes).
 * `needsRehash` tells the caller to store a fresh hash after a successful sign-in.
 */
import * as crypto from 'node:crypto';

export interface Argon2Params {
  algorithm: 'argon2id';
  /** memory in KiB */
  memoryKiB: number;
  /** passes (time cost) */
  passes: number;
  parallelism: number;
}

export interface ScryptParams {
  algorithm: 'scrypt';
  /** log2 of N, the CPU/memory cost */
  logN: number;
  blockSize: number;
  parallelism: number;
}

export type PasswordParams = Argon2Params | ScryptParams;

type Argon2Fn = (
  algorithm: 'argon2id',
  parameters: {
    message: string | Buffer;
    nonce: Buffer;
    parallelism: number;
    tagLength: number;
    memory: number;
    passes: number;
  },
  callback: (err: Error | null, derivedKey: Buffer) => void,
) => void;

const argon2 = (crypto as unknown as { argon2?: Argon2Fn }).argon2;

/** True when this Node has Argon2id (node:crypto `argon2`, Node >= 24.7). */
export const HAVE_ARGON2 = typeof argon2 === 'function';

/** OWASP's Argon2id baseline (19 MiB, 2 passes, 1 lane): about 45 ms on one core here. */
export const ARGON2_DEFAULTS: Argon2Params = {
  algorithm: 'argon2id',
  memoryKiB: 19456,
  passes: 2,
  parallelism: 1,
};
/** scrypt N = 2^17, r = 8, p = 1 (128 MiB): the fallback where Argon2 is missing. */
export const SCRYPT_DEFAULTS: ScryptParams = { algorithm: 'scrypt', logN: 17, blockSize: 8, parallelism: 1 };
export const DEFAULT_PASSWORD_PARAMS: PasswordParams = HAVE_ARGON2 ? ARGON2_DEFAULTS : SCRYPT_DEFAULTS;

const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Longer passwords are refused before hashing (the KDF cost does not grow, but parsing does). */
export const MAX_PASSWORD_LENGTH = 1024;

// Bounds for parameters read back from storage.
const LIMITS = {
  memoryKiB: [8, 1 << 20],
  passes: [1, 16],
  parallelism: [1, 16],
  logN: [10, 22],
  blockSize: [1, 32],
} as const;

function within(v: number, [lo, hi]: readonly [number, number]): boolean {
  return Number.isInteger(v) && v >= lo && v <= hi;
}

function checkParams(p: PasswordParams): void {
  const ok =
    p.algorithm === 'argon2id'
      ? within(p.memoryKiB, LIMITS.memoryKiB) &&
        within(p.passes, LIMITS.passes) &&
        within(p.parallelism, LIMITS.parallelism) &&
        p.memoryKiB >= 8 * p.parallelism
      : within(p.logN, LIMITS.logN) &&
        within(p.blockSize, LIMITS.blockSize) &&
        within(p.parallelism, LIMITS.parallelism);
  if (!ok) throw new RangeError(`password hash parameters out of bounds: ${JSON.stringify(p)}`);
}

/** NFKC as NIST SP 800-63B asks, so the same password typed on another keyboard still matches. */
function normalize(password: string): Buffer {
  return Buffer.from(password.normalize('NFKC'), 'utf8');
}

function derive(password: string, salt: Buffer, p: PasswordParams, length: number): Promise<Buffer> {
  const message = normalize(password);
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, key: Buffer) => (err ? reject(err) : resolve(key));
    if (p.algorithm === 'argon2id') {
      if (!argon2)
        return reject(new Error('this Node has no Argon2 (crypto.argon2 needs Node >= 24.7); use scrypt'));
      argon2(
        'argon2id',
        {
          message,
          nonce: salt,
          parallelism: p.parallelism,
          tagLength: length,
          memory: p.memoryKiB,
          passes: p.passes,
        },
        done,
      );
    } else {
      const N = 2 ** p.logN;
      const maxmem = 128 * N * p.blockSize * (p.parallelism + 1) + 1024 * 1024;
      crypto.scrypt(message, salt, length, { N, r: p.blockSize, p: p.parallelism, maxmem }, done);
    }
  });
}

const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');

function fromB64(text: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]+$/.test(text) || text.length % 4 === 1) return null;
  return Buffer.from(text, 'base64');
}

function encode(p: PasswordParams, salt: Buffer, hash: Buffer): string {
  if (p.algorithm === 'argon2id') {
    return `$argon2id$v=19$m=${p.memoryKiB},t=${p.passes},p=${p.parallelism}$${b64(salt)}$${b64(hash)}`;
  }
  return `$scrypt$ln=${p.logN},r=${p.blockSize},p=${p.parallelism}$${b64(salt)}$${b64(hash)}`;
}

interface Decoded {
  params: PasswordParams;
  salt: Buffer;
  hash: Buffer;
}

function keyValues(text: string): Map<string, number> | null {
  const out = new Map<string, number>();
  for (const part of text.split(',')) {
    const m = /^([a-z]+)=(\d{1,10})$/.exec(part);
    if (!m || out.has(m[1]!)) return null;
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** Parses an encoded hash; null when it is not one we wrote (or its parameters are out of bounds). */
export function decodePasswordHash(encoded: string): Decoded | null {
  if (encoded.length > 512) return null;
  const parts = encoded.split('$');
  let params: PasswordParams;
  let saltText: string;
  let hashText: string;
  if (parts.length === 6 && parts[0] === '' && parts[1] === 'argon2id' && parts[2] === 'v=19') {
    const kv = keyValues(parts[3]!);
    if (kv?.size !== 3 || !kv.has('m') || !kv.has('t') || !kv.has('p')) return null;
    params = {
      algorithm: 'argon2id',
      memoryKiB: kv.get('m')!,
      passes: kv.get('t')!,
      parallelism: kv.get('p')!,
    };
    saltText = parts[4]!;
    hashText = parts[5]!;
  } else if (parts.length === 5 && parts[0] === '' && parts[1] === 'scrypt') {
    const kv = keyValues(parts[2]!);
    if (kv?.size !== 3 || !kv.has('ln') || !kv.has('r') || !kv.has('p')) return null;
    params = { algorithm: 'scrypt', logN: kv.get('ln')!, blockSize: kv.get('r')!, parallelism: kv.get('p')! };
    saltText = parts[3]!;
    hashText = parts[4]!;
  } else return null;
  try {
    checkParams(params);
  } catch {
    return null;
  }
  const salt = fromB64(saltText);
  const hash = fromB64(hashText);
  if (!salt || !hash || salt.length < 8 || salt.length > 64 || hash.length < 16 || hash.length > 64)
    return null;
  return { params, salt, hash };
}

/** Hashes a password into the encoded string (fresh random salt). */
export async function hashPassword(
  password: string,
  params: PasswordParams = DEFAULT_PASSWORD_PARAMS,
): Promise<string> {
  if (password.length > MAX_PASSWORD_LENGTH)
    throw new RangeError(`password longer than ${MAX_PASSWORD_LENGTH} characters`);
  checkParams(params);
  const salt = crypto.randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, params, HASH_BYTES);
  return encode(params, salt, hash);
}

/**
 * True when `password` matches `encoded`. False for a wrong password, an over-long password and
 * an encoded string we cannot read (never throws for those).
 */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const d = decodePasswordHash(encoded);
  if (!d || password.length > MAX_PASSWORD_LENGTH) return false;
  if (d.params.algorithm === 'argon2id' && !HAVE_ARGON2) return false;
  const got = await derive(password, d.salt, d.params, d.hash.length);
  return crypto.timingSafeEqual(got, d.hash);
}

let dummy: Promise<string> | undefined;

/**
 * Verifies against `encoded`, or when there is no such user against a throw-away hash with the
 * default parameters, so "no such user" costs the same time as "wrong password".
 */
export async function verifyPasswordOrDummy(
  password: string,
  encoded: string | null | undefined,
): Promise<boolean> {
  if (encoded) return verifyPassword(password, encoded);
  dummy ??= hashPassword(crypto.randomBytes(18).toString('base64'));
  await verifyPassword(password, await dummy);
  return false;
}

/** True when `encoded` was made with another algorithm or other parameters than `params`. */
export function needsRehash(encoded: string, params: PasswordParams = DEFAULT_PASSWORD_PARAMS): boolean {
  const d = decodePasswordHash(encoded);
  if (!d || d.hash.length !== HASH_BYTES || d.salt.length !== SALT_BYTES) return true;
  const p = d.params;
  if (p.algorithm !== params.algorithm) return true;
  if (p.algorithm === 'argon2id' && params.algorithm === 'argon2id') {
    return (
      p.memoryKiB !== params.memoryKiB || p.passes !== params.passes || p.parallelism !== params.parallelism
    );
  }
  if (p.algorithm === 'scrypt' && params.algorithm === 'scrypt') {
    return p.logN !== params.logN || p.blockSize !== params.blockSize || p.parallelism !== params.parallelism;
  }
  return true;
}

/** Cheap parameters for tests only (never for stored passwords). */
export const TEST_PASSWORD_PARAMS: PasswordParams = HAVE_ARGON2
  ? { algorithm: 'argon2id', memoryKiB: 64, passes: 1, parallelism: 1 }
  : { algorithm: 'scrypt', logN: 10, blockSize: 8, parallelism: 1 };

const COMMON = new Set([
  'password',
  'passw0rd',
  'password1',
  'password123',
  'qwerty',
  'qwertyuiop',
  'letmein',
  'iloveyou',
  'welcome',
  'admin',
  'administrator',
  'changeme',
  'postmaster',
  'abc123',
  'monkey',
  'dragon',
  'football',
  'baseball',
  'sunshine',
  'princess',
  'trustno1',
]);

/**
 * The strength minimum for a new password: at least `minLength` characters (default 12, counted
 * as code points), at most MAX_PASSWORD_LENGTH, not one repeated character or a simple run, not a
 * well-known password (with digits added), not the account name. Returns the reason, or null.
 */
export function passwordProblem(
  password: string,
  opts: { minLength?: number; account?: string } = {},
): string | null {
  const min = opts.minLength ?? 12;
  const chars = [...password.normalize('NFKC')];
  if (chars.length < min) return `the password needs at least ${min} characters`;
  if (password.length > MAX_PASSWORD_LENGTH)
    return `the password may have at most ${MAX_PASSWORD_LENGTH} characters`;
  if (new Set(chars).size < 4) return 'the password repeats too few different characters';
  const lower = password.toLowerCase();
  const stem = lower.replace(/[\d!.?_-]+$/, '').replace(/^[\d!.?_-]+/, '');
  if (COMMON.has(stem) || /^(?:0123456789|1234567890|abcdefghij|qwertyuiop)/.test(lower)) {
    return 'the password is a well-known one';
  }
  if (opts.account) {
    const acct = opts.account.toLowerCase();
    const local = acct.split('@')[0] ?? acct;
    if (lower.includes(acct) || (local.length >= 4 && lower.includes(local)))
      return 'the password contains the account name';
  }
  return null;
}
