/**
 * SPF (RFC 7208): authorizes the SMTP client's IP for the MAIL FROM domain (§2.4), the HELO
 * name (§2.3), or any declared identity through checkHost(). The result is a fact; what to do
 * with it is the policy's business.
 */
import { stripBrackets } from '../../common/domain.ts';
import { checkHost } from './evaluate.ts';
import type { SpfDeps, SpfFact } from './types.ts';

export { checkHost, initialDomainProblem } from './evaluate.ts';
export { expandMacroString, type MacroString, type MacroValues, parseMacroString } from './macro.ts';
export { parseRecord, type RecordSelection, type SpfParseResult, type SpfRecord, selectRecord } from './parse.ts';
export {
  type CheckHostArgs,
  DEFAULT_SPF_LIMITS,
  type SpfDeps,
  type SpfFact,
  type SpfIdentity,
  type SpfLimits,
  type SpfResult,
} from './types.ts';

function isAddressLiteral(helo: string): boolean {
  return helo.startsWith('[') || /^\d+\.\d+\.\d+\.\d+$/.test(helo) || helo.includes(':');
}

/**
 * SPF for the MAIL FROM identity. An empty reverse-path ("" or "<>") checks postmaster@<helo>
 * (§2.4); a missing local part becomes "postmaster" (§4.3).
 */
export function checkMailFrom(
  args: { ip: string; mailFrom: string; helo: string; receiver?: string },
  deps: SpfDeps,
): Promise<SpfFact> {
  const mailFrom = stripBrackets(args.mailFrom);
  const common = { ip: args.ip, helo: args.helo, receiver: args.receiver, identity: 'mailfrom' as const };
  if (mailFrom === '') {
    const helo = args.helo.trim();
    if (isAddressLiteral(helo)) return Promise.resolve(noneForHelo(args.ip, helo, 'mailfrom'));
    return checkHost({ ...common, domain: helo, sender: `postmaster@${helo}` }, deps);
  }
  const at = mailFrom.lastIndexOf('@');
  const local = at < 0 ? '' : mailFrom.slice(0, at);
  const domain = at < 0 ? mailFrom : mailFrom.slice(at + 1);
  return checkHost({ ...common, domain, sender: `${local || 'postmaster'}@${domain}` }, deps);
}

/** SPF for the HELO identity (§2.3): <sender> is postmaster@<helo>. Address literals give none. */
export function checkHelo(args: { ip: string; helo: string; receiver?: string }, deps: SpfDeps): Promise<SpfFact> {
  const helo = args.helo.trim();
  if (isAddressLiteral(helo)) return Promise.resolve(noneForHelo(args.ip, helo, 'helo'));
  return checkHost(
    { ip: args.ip, domain: helo, sender: `postmaster@${helo}`, helo, receiver: args.receiver, identity: 'helo' },
    deps,
  );
}

function noneForHelo(ip: string, helo: string, identity: 'mailfrom' | 'helo'): SpfFact {
  return {
    result: 'none',
    identity,
    domain: helo,
    sender: `postmaster@${helo}`,
    ip,
    reason: `the HELO name '${helo}' is an address literal, not a domain (§2.3)`,
    lookups: 0,
    voidLookups: 0,
  };
}
