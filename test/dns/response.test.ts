import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  decodeMessage,
  encodeMessage,
  type MessageInput,
  type RecordInput,
  RCODE,
} from '../../src/dns/codec.ts';
import { interpretResponse, MAX_CNAME_CHAIN, negativeTtl } from '../../src/dns/response.ts';

const soa = (ttl: number, minimum: number): RecordInput => ({
  name: 'example',
  type: 'SOA',
  ttl,
  data: { mname: 'ns.example', rname: 'h.example', serial: 1, refresh: 1, retry: 1, expire: 1, minimum },
});

const reply = (m: MessageInput) =>
  decodeMessage(encodeMessage({ id: 1, qr: true, questions: [{ name: 'q.example', type: 'A' }], ...m }));

describe('interpretResponse', () => {
  test('records of the asked type and class IN only; AD becomes authenticated', () => {
    const msg = reply({
      ad: true,
      answers: [
        { name: 'q.example', type: 'A', ttl: 50, data: '192.0.2.1' },
        { name: 'q.example', type: 'A', class: 3, ttl: 50, data: '192.0.2.99' },
        { name: 'q.example', type: 'AAAA', ttl: 50, data: '2001:db8::1' },
        { name: 'other.example', type: 'A', ttl: 50, data: '192.0.2.98' },
        { name: 'Q.EXAMPLE', type: 'A', ttl: 20, data: '192.0.2.2' },
      ],
    });
    assert.deepEqual(interpretResponse(msg, 'q.example', 'A'), {
      final: true,
      result: { status: 'ok', records: ['192.0.2.1', '192.0.2.2'], ttl: 20, authenticated: true },
    });
  });

  test('a CNAME chain: TTL is the minimum along it; NXDOMAIN and NODATA apply to its end', () => {
    const chain: RecordInput[] = [
      { name: 'q.example', type: 'CNAME', ttl: 100, data: 'b.example' },
      { name: 'b.example', type: 'CNAME', ttl: 30, data: 'c.example' },
    ];
    const data = reply({
      answers: [...chain, { name: 'c.example', type: 'A', ttl: 200, data: '192.0.2.3' }],
    });
    assert.deepEqual(interpretResponse(data, 'q.example', 'A'), {
      final: true,
      result: { status: 'ok', records: ['192.0.2.3'], ttl: 30, authenticated: false },
    });
    const nx = reply({ rcode: RCODE.NXDOMAIN, answers: chain, authorities: [soa(600, 60)] });
    assert.deepEqual(interpretResponse(nx, 'q.example', 'A'), {
      final: true,
      result: { status: 'nxdomain', ttl: 30 },
    });
    const nodata = reply({ answers: chain, authorities: [soa(10, 60)] });
    assert.deepEqual(interpretResponse(nodata, 'q.example', 'A'), {
      final: true,
      result: { status: 'nodata', ttl: 10 },
    });
    // asking for the CNAME itself does not follow it
    assert.deepEqual(interpretResponse(data, 'q.example', 'CNAME'), {
      final: true,
      result: { status: 'ok', records: ['b.example'], ttl: 100, authenticated: false },
    });
  });

  test(`chains longer than ${MAX_CNAME_CHAIN} and loops are errors`, () => {
    const answers: RecordInput[] = [];
    for (let i = 0; i <= MAX_CNAME_CHAIN; i++) {
      answers.push({
        name: i === 0 ? 'q.example' : `h${i}.example`,
        type: 'CNAME',
        ttl: 5,
        data: `h${i + 1}.example`,
      });
    }
    answers.push({ name: `h${MAX_CNAME_CHAIN + 1}.example`, type: 'A', ttl: 5, data: '192.0.2.4' });
    assert.deepEqual(interpretResponse(reply({ answers }), 'q.example', 'A'), {
      final: true,
      result: { status: 'error', message: 'CNAME chain too long' },
    });
    // exactly the limit is fine
    const fits = answers.slice(1);
    fits[0] = { ...fits[0]!, name: 'q.example' };
    const atLimit = interpretResponse(reply({ answers: fits }), 'q.example', 'A');
    assert.ok(atLimit.final && atLimit.result.status === 'ok');
    const loop = reply({
      answers: [
        { name: 'q.example', type: 'CNAME', ttl: 5, data: 'b.example' },
        { name: 'b.example', type: 'CNAME', ttl: 5, data: 'c.example' },
        { name: 'c.example', type: 'CNAME', ttl: 5, data: 'B.example' },
      ],
    });
    const r = interpretResponse(loop, 'q.example', 'A');
    assert.ok(r.final && r.result.status === 'error' && /CNAME loop at B\.example/.test(r.result.message));
  });

  test('negative TTL: min(SOA TTL, MINIMUM); 0 without an SOA', () => {
    assert.equal(negativeTtl(reply({ authorities: [soa(300, 60)] })), 60);
    assert.equal(negativeTtl(reply({ authorities: [soa(30, 600)] })), 30);
    assert.equal(negativeTtl(reply({})), 0);
  });

  test('a referral is retried elsewhere; NS with AA or with an SOA is NODATA', () => {
    const ns: RecordInput = { name: 'example', type: 'NS', ttl: 5, data: 'ns.example' };
    const referral = interpretResponse(reply({ authorities: [ns] }), 'q.example', 'A');
    assert.deepEqual(referral, {
      final: false,
      status: 'error',
      message: 'referral: the server did not recurse',
      ednsProblem: false,
    });
    assert.deepEqual(interpretResponse(reply({ aa: true, authorities: [ns] }), 'q.example', 'A'), {
      final: true,
      result: { status: 'nodata', ttl: 0 },
    });
    assert.deepEqual(interpretResponse(reply({ authorities: [ns, soa(9, 9)] }), 'q.example', 'A'), {
      final: true,
      result: { status: 'nodata', ttl: 9 },
    });
  });

  test('rcodes map to failures; the ones an EDNS-less server gives ask for a retry without EDNS', () => {
    const cases: [number, string, boolean][] = [
      [RCODE.SERVFAIL, 'servfail', false],
      [RCODE.REFUSED, 'refused', false],
      [RCODE.FORMERR, 'formerr', true],
      [RCODE.NOTIMP, 'error', true],
      [RCODE.BADVERS, 'formerr', true],
      [RCODE.YXDOMAIN, 'error', false],
      [RCODE.NOTAUTH, 'error', false],
    ];
    for (const [rcode, status, ednsProblem] of cases) {
      const r = interpretResponse(reply({ rcode, edns: {} }), 'q.example', 'A');
      assert.equal(r.final, false);
      if (r.final) continue;
      assert.equal(r.status, status, `rcode ${rcode}`);
      assert.equal(r.ednsProblem, ednsProblem, `rcode ${rcode}`);
    }
  });
});
