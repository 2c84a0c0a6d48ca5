/**
 * The adapter docs show exactly what the code generates and the MTA tests run: the Exim snippet,
 * the Postfix main.cf lines, the qmail wrapper script, the Exchange checkid.yaml block.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { eximSnippetText } from '../../../src/adapters/exim/config.ts';
import { postfixPolicyLines } from '../../../src/adapters/policyd/postfix.ts';
import { integrationText, qmailWrapperScript } from '../../../src/cli/integrate.ts';

const doc = (name: string) => readFileSync(new URL(`../../../docs/adapters/${name}`, import.meta.url), 'utf8');

test('docs/adapters/exim.md holds the snippet `checkid integrate exim` prints, whole', () => {
  assert.ok(doc('exim.md').includes(eximSnippetText()), 'exim.md is out of date: paste eximSnippetText() again');
});

test('docs/adapters/postfix-policy.md holds the main.cf lines `checkid integrate postfix` prints', () => {
  assert.ok(doc('postfix-policy.md').includes(`\`\`\`\n${postfixPolicyLines().join('\n')}\n\`\`\``));
});

test('docs/adapters/qmail.md holds the wrapper script `checkid integrate qmail` prints', () => {
  const script = qmailWrapperScript({ configPath: '/etc/checkid/checkid.yaml', checkid: '/opt/checkid/node_modules/.bin/node /opt/checkid/bin/checkid.mjs' });
  assert.ok(doc('qmail.md').includes(`\`\`\`sh\n${script}\`\`\``));
  assert.ok(integrationText('qmail', { checkid: '/opt/checkid/node_modules/.bin/node /opt/checkid/bin/checkid.mjs' }).includes(script));
});

test('docs/adapters/exchange.md holds the checkid.yaml block and the PowerShell lines `checkid integrate exchange` prints', () => {
  const printed = integrationText('exchange');
  const text = doc('exchange.md');
  const yaml = /^smtp:\n(?: {2}.*\n)+/m.exec(printed)![0];
  assert.ok(text.includes(yaml), yaml);
  for (const line of printed.split('\n').filter((l) => /^(New-|Set-| {2}-)/.test(l))) assert.ok(text.includes(line), line);
});
