/**
 * A minimal DKIM signer for unit tests, built on our canonicalizers and node:crypto, so tests can
 * produce exactly the tags they need (one-name c=, l=, odd i=, t=/x=, extra tags). Independent
 * checking of the canonicalizers comes from the corpora and the mailauth differential tests.
 */
import { createHash, generateKeyPairSync, type KeyObject, sign as cryptoSign } from 'node:crypto';
import { canonicalizeBody, type Canonicalization } from '../../../src/checks/dkim/canon.ts';
import { headerField, indexFields, selectFields, signedHeaderText } from '../../../src/checks/dkim/fields.ts';
import { parseTagList } from '../../../src/checks/dkim/tags.ts';

export interface TestKey {
  type: 'rsa' | 'ed25519';
  privateKey: KeyObject;
  /** the private key as PKCS#8 PEM (what mailauth's signers take) */
  privatePem: string;
  /** the key record's p= */
  p: string;
  /** the DNS TXT record: "v=DKIM1; k=<type>; p=<p>" */
  record: string;
}

/** A key record for `key` with extra tags before p= ("h=sha1", "t=y"), as a DNS TXT text. */
export function keyRecord(key: Pick<TestKey, 'type' | 'p'>, tags: readonly string[] = []): string {
  return ['v=DKIM1', `k=${key.type}`, ...tags, `p=${key.p}`].join('; ');
}

function testKey(type: TestKey['type'], privateKey: KeyObject, p: string): TestKey {
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return { type, privateKey, privatePem, p, record: keyRecord({ type, p }) };
}

export function rsaKey(bits = 2048): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return testKey('rsa', privateKey, publicKey.export({ type: 'spki', format: 'der' }).toString('base64'));
}

export function ed25519Key(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  // RFC 8463: the raw 32-octet key, the tail of its SubjectPublicKeyInfo
  return testKey(
    'ed25519',
    privateKey,
    publicKey.export({ type: 'spki', format: 'der' }).subarray(12).toString('base64'),
  );
}

/** The keys of the mailauth differential tests: RSA, Ed25519, and another RSA key for "DNS holds a different key". */
export interface DifferentialKeys {
  rsa: TestKey;
  ed: TestKey;
  other: TestKey;
}

export function differentialKeys(otherBits = 2048): DifferentialKeys {
  return { rsa: rsaKey(), ed: ed25519Key(), other: rsaKey(otherBits) };
}

export interface SignOptions {
  key: TestKey;
  domain?: string;
  selector?: string;
  /** c= as written ("relaxed" alone means relaxed/simple); default relaxed/relaxed */
  c?: string;
  /** h= names as written; default every field name of the message once */
  h?: string[];
  l?: number;
  i?: string;
  t?: number;
  x?: number;
  /** a= as written; default from the key type */
  a?: string;
  /** tags inserted before b= (e.g. "z=..." or "foo=bar") */
  extra?: string;
  /** name of the signature field as written */
  fieldName?: string;
  /** bh= to write instead of hashing the message's body (for bodies too large to hold) */
  bodyHash?: string;
}

/** Splits "Name: value\r\n..." into [name, value] pairs, values after the colon as written. */
export function parseFields(headerBlock: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const line of headerBlock.split('\r\n')) {
    if (line === '') continue;
    if (/^[ \t]/.test(line)) out[out.length - 1]![1] += `\r\n${line}`;
    else {
      const colon = line.indexOf(':');
      out.push([line.slice(0, colon), line.slice(colon + 1)]);
    }
  }
  return out;
}

/** Signs a CRLF message ("headers\r\n\r\nbody") and returns it with the DKIM-Signature on top. */
export function signMessage(message: string, o: SignOptions): string {
  const split = message.indexOf('\r\n\r\n');
  const headerBlock = split < 0 ? message : message.slice(0, split + 2);
  const body = split < 0 ? '' : message.slice(split + 4);
  const c = o.c ?? 'relaxed/relaxed';
  const [hc, bc = 'simple'] = c.split('/') as [Canonicalization, Canonicalization?];
  const hash = o.a === 'rsa-sha1' ? 'sha1' : 'sha256';
  let bh = o.bodyHash;
  if (bh === undefined) {
    let canonBody = canonicalizeBody(bc, Buffer.from(body, 'latin1'));
    if (o.l !== undefined) canonBody = canonBody.subarray(0, o.l);
    bh = createHash(hash).update(canonBody).digest('base64');
  }
  const pairs = parseFields(headerBlock);
  const h = o.h ?? [...new Set(pairs.map(([n]) => n))];
  const a = o.a ?? (o.key.type === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256');
  const tags = [
    'v=1',
    `a=${a}`,
    `c=${c}`,
    `d=${o.domain ?? 'example.com'}`,
    `s=${o.selector ?? 'sel'}`,
    `h=${h.join(':')}`,
    ...(o.l !== undefined ? [`l=${o.l}`] : []),
    ...(o.i !== undefined ? [`i=${o.i}`] : []),
    ...(o.t !== undefined ? [`t=${o.t}`] : []),
    ...(o.x !== undefined ? [`x=${o.x}`] : []),
    ...(o.extra ? [o.extra] : []),
    `bh=${bh}`,
    'b=',
  ];
  const value = ` ${tags.join('; ')}`;
  const fields = pairs.map(([n, v]) => headerField(n, v));
  const selected = selectFields(
    fields,
    indexFields(fields),
    h.map((n) => n.toLowerCase()),
  );
  const list = parseTagList(value);
  if (!list.ok) throw new Error(list.error);
  const text = signedHeaderText(selected, hc, o.fieldName ?? 'DKIM-Signature', value);
  const data = Buffer.from(text, 'latin1');
  const b =
    o.key.type === 'rsa'
      ? cryptoSign(hash, data, o.key.privateKey).toString('base64')
      : cryptoSign(null, createHash('sha256').update(data).digest(), o.key.privateKey).toString('base64');
  return `${o.fieldName ?? 'DKIM-Signature'}:${value}${b}\r\n${message}`;
}
