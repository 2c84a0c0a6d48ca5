/** Received header fields as Postfix, Sendmail, Exim, qmail and Exchange write them. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseReceived } from '../../src/replay/received.ts';

/** A header value as stored: folded with CRLF and a tab or spaces. */
const fold = (...lines: string[]) => lines.join('\r\n\t');

describe('Postfix', () => {
  test('TLS, reverse name equal to HELO, for clause', () => {
    const r = parseReceived(
      fold(
        'from mail-wr1-f54.google.com (mail-wr1-f54.google.com [209.85.221.54])',
        '(using TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128 bits)',
        ' key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)',
        '(No client certificate requested)',
        'by mx.example.org (Postfix) with ESMTPS id 4VtQ9k0Xyzz2xQ',
        'for <bob@example.org>; Mon,  3 Jun 2024 10:00:00 +0200 (CEST)',
      ),
    );
    assert.equal(r.format, 'postfix');
    assert.equal(r.ip, '209.85.221.54');
    assert.equal(r.helo, 'mail-wr1-f54.google.com');
    assert.equal(r.reverse, 'mail-wr1-f54.google.com');
    assert.equal(r.by, 'mx.example.org');
    assert.equal(r.with, 'ESMTPS');
    assert.equal(r.id, '4VtQ9k0Xyzz2xQ');
    assert.equal(r.for, 'bob@example.org');
    assert.equal(r.date, 'Mon,  3 Jun 2024 10:00:00 +0200 (CEST)');
    assert.equal(r.problem, undefined);
  });

  test('no reverse name ("unknown") and an IPv6 client', () => {
    const r = parseReceived(fold('from helo.example (unknown [IPv6:2001:db8:1::25])', 'by mx.example.org (Postfix) with ESMTP id 4VtQ9k0Xyzz2xQ; Mon,  3 Jun 2024 10:00:00 +0200 (CEST)'));
    assert.equal(r.format, 'postfix');
    assert.equal(r.ip, '2001:db8:1::25');
    assert.equal(r.helo, 'helo.example');
    assert.equal(r.reverse, undefined);
  });

  test('an address-literal HELO and an authenticated submission: the IP is the connection\'s, not the HELO\'s', () => {
    const r = parseReceived(
      fold('from [192.168.1.10] (unknown [198.51.100.7])', '(Authenticated sender: bob@example.org)', 'by mx.example.org (Postfix) with ESMTPSA id 4VtQB21qv3z9sWb; Mon,  3 Jun 2024 10:00:00 +0200 (CEST)'),
    );
    assert.equal(r.ip, '198.51.100.7');
    assert.equal(r.helo, '[192.168.1.10]');
    assert.equal(r.with, 'ESMTPSA');
  });

  test('IPv6 written in full is canonicalized; an IPv4-mapped address becomes IPv4', () => {
    assert.equal(parseReceived('from a.example (a.example [IPv6:2001:DB8:0:0:0:0:0:25]) by mx.example.org (Postfix) with ESMTP id X; date').ip, '2001:db8::25');
    assert.equal(parseReceived('from a.example (a.example [IPv6:::ffff:192.0.2.1]) by mx.example.org (Postfix) with ESMTP id X; date').ip, '192.0.2.1');
  });
});

describe('Sendmail', () => {
  test('TLS, for clause, the version pair in the by clause', () => {
    const r = parseReceived(
      fold(
        'from mail.example.com (mail.example.com [192.0.2.1])',
        'by mx.example.org (8.17.1/8.17.1) with ESMTPS id 453A0Aa1012345',
        '(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256 verify=NOT)',
        'for <bob@example.org>; Mon, 3 Jun 2024 10:00:00 +0200',
      ),
    );
    assert.equal(r.format, 'sendmail');
    assert.equal(r.ip, '192.0.2.1');
    assert.equal(r.helo, 'mail.example.com');
    assert.equal(r.reverse, 'mail.example.com');
    assert.equal(r.id, '453A0Aa1012345');
    assert.equal(r.for, 'bob@example.org');
  });

  test('"(may be forged)" nested in the comment', () => {
    const r = parseReceived(fold('from helo.example (host.example.net [198.51.100.9] (may be forged))', 'by mx.example.org (8.17.1/8.17.1) with ESMTP id 453A0Aa1012345; Mon, 3 Jun 2024 10:00:00 +0200'));
    assert.equal(r.ip, '198.51.100.9');
    assert.equal(r.helo, 'helo.example');
    assert.equal(r.reverse, 'host.example.net');
  });

  test('no reverse name, an ident user, an IPv6 client', () => {
    assert.deepEqual(
      (({ ip, helo, reverse }) => ({ ip, helo, reverse }))(parseReceived('from helo.example ([198.51.100.9]) by mx.example.org (8.17.1/8.17.1) with SMTP id 453A; date')),
      { ip: '198.51.100.9', helo: 'helo.example', reverse: undefined },
    );
    const ident = parseReceived('from helo.example (joe@host.example.net [198.51.100.9]) by mx.example.org (8.17.1/8.17.1) with SMTP id 453A; date');
    assert.equal(ident.ident, 'joe');
    assert.equal(ident.reverse, 'host.example.net');
    assert.equal(parseReceived('from mail6.example.com (mail6.example.com [IPv6:2001:db8::25]) by mx.example.org (8.17.1/8.17.1) with ESMTP id 453A; date').ip, '2001:db8::25');
  });

  test('no HELO at all: "(from REVERSE [IP])"', () => {
    const r = parseReceived(fold('(from host.example.net [198.51.100.9])', 'by mx.example.org (8.17.1/8.17.1) with SMTP id 453A0Aa1012345; Mon, 3 Jun 2024 10:00:00 +0200'));
    assert.equal(r.ip, '198.51.100.9');
    assert.equal(r.helo, undefined);
    assert.equal(r.reverse, 'host.example.net');
    assert.equal(r.format, 'sendmail');
  });

  test('a local submission has no client IP', () => {
    const r = parseReceived(fold('(from root@localhost)', 'by mx.example.org (8.17.1/8.17.1/Submit) id 453A0Aa1012345; Mon, 3 Jun 2024 10:00:00 +0200'));
    assert.equal(r.ip, undefined);
    assert.match(r.problem!, /no client IP/);
  });
});

describe('Exim', () => {
  test('verified name, a different HELO, envelope-from, for without brackets', () => {
    const r = parseReceived(
      fold(
        'from mail.example.com ([192.0.2.1] helo=smtp.example.com)',
        'by mx.example.org with esmtps  (TLS1.3) tls TLS_AES_256_GCM_SHA384',
        '(Exim 4.96)',
        '(envelope-from <alice@example.com>)',
        'id 1sE5xY-000ABC-2D',
        'for bob@example.org; Mon, 03 Jun 2024 10:00:00 +0200',
      ),
    );
    assert.equal(r.format, 'exim');
    assert.equal(r.ip, '192.0.2.1');
    assert.equal(r.helo, 'smtp.example.com');
    assert.equal(r.reverse, 'mail.example.com');
    assert.equal(r.envelopeFrom, 'alice@example.com');
    assert.equal(r.for, 'bob@example.org');
    assert.equal(r.id, '1sE5xY-000ABC-2D');
  });

  test('verified name equal to the HELO (no helo=), port logging', () => {
    const r = parseReceived(fold('from mail.example.com ([192.0.2.1]:45678)', 'by mx.example.org with esmtp (Exim 4.96)', '(envelope-from <>)', 'id 1sE5xY-000ABC-2D; Mon, 03 Jun 2024 10:00:00 +0200'));
    assert.equal(r.ip, '192.0.2.1');
    assert.equal(r.port, 45678);
    assert.equal(r.helo, 'mail.example.com');
    assert.equal(r.envelopeFrom, '', 'the null sender');
  });

  test('no verified name: [IP] first, port= and helo= and ident= in the comment', () => {
    const r = parseReceived(fold('from [198.51.100.9] (port=51234 helo=client.example ident=joe)', 'by mx.example.org with esmtp (Exim 4.96)', 'id 1sE5xY-000ABC-2D; Mon, 03 Jun 2024 10:00:00 +0200'));
    assert.equal(r.format, 'exim');
    assert.equal(r.ip, '198.51.100.9');
    assert.equal(r.port, 51234);
    assert.equal(r.helo, 'client.example');
    assert.equal(r.ident, 'joe');
    assert.equal(r.reverse, undefined);
  });

  test('an IPv6 client is bracketed without the IPv6: tag', () => {
    const r = parseReceived(fold('from [2001:db8::25] (helo=mail.example.com)', 'by mx.example.org with esmtp (Exim 4.96)', 'id 1sE5xY-000ABC-2D; Mon, 03 Jun 2024 10:00:00 +0200'));
    assert.equal(r.ip, '2001:db8::25');
    assert.equal(r.helo, 'mail.example.com');
  });

  test('no helo= and no verified name: the HELO was the address literal', () => {
    const r = parseReceived(fold('from [198.51.100.9]', 'by mx.example.org with smtp (Exim 4.96)', 'id 1sE5xY-000ABC-2D; Mon, 03 Jun 2024 10:00:00 +0200'));
    assert.equal(r.ip, '198.51.100.9');
    assert.equal(r.helo, '[198.51.100.9]');
  });
});

describe('qmail', () => {
  test('no reverse name ("unknown"), HELO in its own comment', () => {
    const r = parseReceived('from unknown (HELO mail.example.com) (192.0.2.1)\n  by mx.example.org with SMTP; 3 Jun 2024 08:00:00 -0000');
    assert.equal(r.format, 'qmail');
    assert.equal(r.ip, '192.0.2.1');
    assert.equal(r.helo, 'mail.example.com');
    assert.equal(r.by, 'mx.example.org');
    assert.equal(r.with, 'SMTP');
    assert.equal(r.date, '3 Jun 2024 08:00:00 -0000');
  });

  test('HELO equal to the remote host: no (HELO …) comment', () => {
    const r = parseReceived('from mail.example.com (192.0.2.1)\n  by mx.example.org with SMTP; 3 Jun 2024 08:00:00 -0000');
    assert.equal(r.ip, '192.0.2.1');
    assert.equal(r.helo, 'mail.example.com');
  });

  test('remote info (ident) before the IP, and IPv6 (patched qmail) bare or bracketed', () => {
    const r = parseReceived('from remote.example.net (HELO client.example) (joe@198.51.100.9)\n  by mx.example.org with SMTP; 3 Jun 2024 08:00:00 -0000');
    assert.equal(r.ip, '198.51.100.9');
    assert.equal(r.ident, 'joe');
    assert.equal(r.helo, 'client.example');
    assert.equal(parseReceived('from unknown (HELO mail.example.com) (2001:db8::25)\n  by mx.example.org with SMTP; 3 Jun 2024 08:00:00 -0000').ip, '2001:db8::25');
    assert.equal(parseReceived('from unknown (HELO mail.example.com) ([2001:db8::25])\n  by mx.example.org with SMTP; 3 Jun 2024 08:00:00 -0000').ip, '2001:db8::25');
  });

  test('qmail-queue\'s own lines name no client', () => {
    for (const v of ['(qmail 12345 invoked from network); 3 Jun 2024 08:00:00 -0000', '(qmail 12346 invoked by uid 89); 3 Jun 2024 08:00:00 -0000']) {
      const r = parseReceived(v);
      assert.equal(r.format, 'qmail');
      assert.equal(r.ip, undefined);
      assert.match(r.problem!, /no "from" clause/);
    }
  });
});

describe('Exchange', () => {
  test('frontend transport: the client IP, not the receiving server\'s', () => {
    const r = parseReceived(
      'from mail.example.com (192.0.2.1) by EX01.corp.example.org (10.0.0.5) with Microsoft SMTP Server (version=TLS1_2,\r\n cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.1.2507.39 via Frontend Transport; Mon, 3 Jun 2024\r\n 10:00:00 +0200',
    );
    assert.equal(r.format, 'exchange');
    assert.equal(r.ip, '192.0.2.1');
    assert.equal(r.helo, 'mail.example.com');
    assert.equal(r.by, 'EX01.corp.example.org');
    assert.equal(r.date, 'Mon, 3 Jun 2024 10:00:00 +0200');
  });

  test('IPv6 without brackets (Exchange Online), an address-literal HELO', () => {
    const r = parseReceived(
      'from DM6PR11MB1234.namprd11.prod.outlook.com (2603:10b6:5:1::12) by SN6PR11MB5678.namprd11.prod.outlook.com (2603:10b6:805:2::34) with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7633.12; Mon, 3 Jun 2024 08:00:00 +0000',
    );
    assert.equal(r.ip, '2603:10b6:5:1::12');
    assert.equal(r.helo, 'DM6PR11MB1234.namprd11.prod.outlook.com');
    const literal = parseReceived('from [192.0.2.1] (192.0.2.1) by EX01.corp.example.org (10.0.0.5) with Microsoft SMTP Server id 15.1.2507.39; Mon, 3 Jun 2024 10:00:00 +0200');
    assert.equal(literal.ip, '192.0.2.1');
    assert.equal(literal.helo, '[192.0.2.1]');
  });
});

describe('others and bad input', () => {
  test('Gmail: a trailing dot on the reverse name; an internal hop without a from clause', () => {
    const r = parseReceived(fold('from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41])', 'by mx.google.com with SMTPS id a640c23a62f3a-a6f0e1b2c3dsor123456766b.99.2024.06.03.01.00.00', 'for <bob@example.org>', '(Google Transport Security);', 'Mon, 03 Jun 2024 01:00:00 -0700 (PDT)'));
    assert.equal(r.ip, '209.85.220.41');
    assert.equal(r.reverse, 'mail-sor-f41.google.com');
    assert.equal(r.format, 'generic');
    const internal = parseReceived('by 2002:a05:6a10:8e0b:b0:5a1:2b3c:4d5e with SMTP id h11csp1234567pxa; Mon, 3 Jun 2024 01:00:00 -0700 (PDT)');
    assert.equal(internal.ip, undefined);
  });

  test('garbage, unclosed comments, deep nesting and huge values: an answer, never a throw', () => {
    const inputs = ['', ';', '(((((', 'from', 'from (', 'from x ([192.0.2.1', 'from x ([999.1.1.1])', `from x ${'('.repeat(10_000)}`, `from x (${'a'.repeat(1_000_000)} [192.0.2.1])`, 'from x (\\) [192.0.2.1])', '\u0000\u00ff from \ud800'];
    for (const v of inputs) {
      const r = parseReceived(v);
      assert.equal(typeof r.format, 'string');
    }
    assert.equal(parseReceived('from x ([999.1.1.1])').ip, undefined);
    // found by fuzz/replay.ts: a stray ")" once looped for ever; a quoted "name" is no HELO
    assert.equal(parseReceived('from a.example) (a.example [192.0.2.1]) by mx; d').ip, '192.0.2.1');
    assert.equal(parseReceived('from "a b" (a.example [192.0.2.1]) by mx; d').helo, undefined);
    // the value is cut at 16 KiB: an address after that is not seen
    assert.equal(parseReceived(`from x (${'a'.repeat(1_000_000)} [192.0.2.1])`).ip, undefined);
  });
});
