/** test/support/bind-zone.ts, the zone file reader the authentication_milter cases use. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseBindZone } from '../../support/bind-zone.ts';
import { MemoryResolver } from '../../support/zone.ts';

describe('BIND zone reader (test support)', () => {
  it('reads owners, TTL and class in either order, and the record types used', () => {
    const z = parseBindZone(
      [
        'example.com.\t300\tIN\tA\t192.0.2.1',
        'example.com. IN 300 AAAA 2001:db8::1',
        'example.com. MX 10 mx.example.com.',
        'www.example.com. 60 IN CNAME example.com.',
        '1.2.0.192.in-addr.arpa. PTR mail.example.com.',
        'example.com. NS ns1.example.net.',
        '_sip._tcp.example.com. SRV 1 2 5060 sip.example.com.',
      ].join('\n'),
    );
    assert.equal(z.records, 7);
    assert.deepEqual(z.data['example.com'], [
      { A: '192.0.2.1' },
      { AAAA: '2001:db8::1' },
      { MX: [10, 'mx.example.com'] },
      { NS: 'ns1.example.net' },
    ]);
    assert.deepEqual(z.data['www.example.com'], [{ CNAME: 'example.com' }]);
    assert.deepEqual(z.data['_sip._tcp.example.com'], [{ SRV: [1, 2, 5060, 'sip.example.com'] }]);
  });

  it('reads TXT character-strings, quoted or bare, across parenthesised lines', () => {
    const z = parseBindZone(
      [
        '_dmarc.example.com. 600 IN TXT ( "v=DMARC1; " "p=reject" )',
        'k._domainkey.example.com. TXT ( "k=rsa; " p=ABC',
        '   DEF )  ; a comment',
        'x.example.com. TXT "semi;colon \\" quote"',
        'empty.example.com TXT',
      ].join('\n'),
    );
    assert.deepEqual(z.data['_dmarc.example.com'], [{ TXT: ['v=DMARC1; ', 'p=reject'] }]);
    assert.deepEqual(z.data['k._domainkey.example.com'], [{ TXT: ['k=rsa; ', 'p=ABC', 'DEF'] }]);
    assert.deepEqual(z.data['x.example.com'], [{ TXT: ['semi;colon " quote'] }]);
    assert.deepEqual(z.data['empty.example.com'], [{ TXT: [''] }]);
  });

  it('honours $ORIGIN, "@" and a blank owner', () => {
    const z = parseBindZone(['$ORIGIN example.org.', '$TTL 300', '@ A 192.0.2.7', '  TXT "v=spf1 -all"', 'mail A 192.0.2.8'].join('\n'));
    assert.deepEqual(z.data['example.org'], [{ A: '192.0.2.7' }, { TXT: ['v=spf1 -all'] }]);
    assert.deepEqual(z.data['mail.example.org'], [{ A: '192.0.2.8' }]);
  });

  it('returns the ;ERROR extension lines and answers through MemoryResolver', async () => {
    const z = parseBindZone(';ERROR,_dmarc.example.com,TXT,NXDOMAIN\nexample.com. TXT "v=spf1 -all"');
    assert.deepEqual(z.errors, [{ name: '_dmarc.example.com', type: 'TXT', rcode: 'NXDOMAIN' }]);
    const resolver = new MemoryResolver(z.data);
    const txt = await resolver.query('example.com', 'TXT');
    assert.equal(txt.status, 'ok');
    assert.equal((await resolver.query('_dmarc.example.com', 'TXT')).status, 'nxdomain');
  });

  it('refuses unknown types with the line number', () => {
    assert.throws(() => parseBindZone('example.com. 300 IN HINFO x y'), /line 1: unknown type HINFO/);
  });
});
