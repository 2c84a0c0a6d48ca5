/**
 * ARC chain validation (RFC 8617): is the chain of ARC Sets on a message intact (cv=pass), and
 * who sealed it? The result is a fact: whether a passing chain from a trusted sealer may override
 * a DMARC failure is the policy's decision (docs/checks/arc.md).
 */
export {
  ARC_AUTHENTICATION_RESULTS,
  ARC_MESSAGE_SIGNATURE,
  ARC_SEAL,
  type AarParse,
  type ArcChain,
  type ArcFieldRef,
  type ArcSeal,
  type ArcSet,
  collectArcSets,
  hasEmptyTagSpec,
  isArcField,
  parseAar,
  parseArcMessageSignature,
  parseArcSeal,
  parseInstanceValue,
  readTagInstance,
  type SealParse,
} from './parse.ts';
export { type ArcMethodOptions, arcMethodResults } from './results.ts';
export {
  type ArcDeps,
  type ArcOptions,
  type ArcResult,
  type ArcSealer,
  type ChainValidation,
  DEFAULT_ARC_OPTIONS,
  MAX_ARC_INSTANCE,
} from './types.ts';
export { ArcVerifier, verifyArc } from './verifier.ts';
