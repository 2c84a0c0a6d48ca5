import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeHtml, html, join, raw, SafeHtml } from '../../src/web/html.ts';

test('interpolations are escaped for content and quoted attributes', () => {
  const name = `<script>alert("x")</script>&'\``;
  const page = html`<p title="${name}">${name}</p>`;
  assert.ok(page instanceof SafeHtml);
  assert.equal(
    page.text,
    '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;&#96;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;&#96;</p>',
  );
  assert.ok(!page.text.includes('<script>'));
});

test('nested templates and raw() pass through; arrays are joined; null, undefined, false vanish', () => {
  const items = ['a<b', 'c&d'].map((x) => html`<li>${x}</li>`);
  const page = html`<ul>${items}</ul>${null}${undefined}${false}${0}${raw('<hr>')}`;
  assert.equal(page.text, '<ul><li>a&lt;b</li><li>c&amp;d</li></ul>0<hr>');
  assert.equal(html`${['<x>', html`<y>`]}`.text, '&lt;x&gt;<y>');
  assert.equal(join([html`<a>`, html`<b>`], ', <').text, '<a>, &lt;<b>');
  assert.equal(escapeHtml('plain text 123'), 'plain text 123');
  assert.equal(String(html`<i>${'&'}</i>`), '<i>&amp;</i>');
});
