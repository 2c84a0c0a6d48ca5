/**
 * The adapter tests' policy hook (helpers.ts puts it in their config): at the end of the message,
 * mail from a local part "discard" is dropped (DISCARD) and mail from "tag" is tagged (FILTER
 * with a subject prefix); every other verdict stays the default.
 */
interface HookContext {
  stage: string;
  facts: { envelope: { mailFrom?: string } };
}

export default function adapterHook({ stage, facts }: HookContext): { action: 'DISCARD' | 'FILTER'; subjectTag?: string } | undefined {
  if (stage !== 'eom') return undefined;
  const from = facts.envelope.mailFrom ?? '';
  if (from.startsWith('discard@')) return { action: 'DISCARD' };
  if (from.startsWith('tag@')) return { action: 'FILTER', subjectTag: '[SUSPECT]' };
  return undefined;
}
