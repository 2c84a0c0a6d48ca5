/**
 * DKIM verification (RFC 6376, RFC 8301, RFC 8463). The building blocks are exported for ARC
 * (RFC 8617), which hashes and fetches keys the same way: tags.ts (tag=value lists), canon.ts
 * (canonicalization), fields.ts (h= selection, header hash input), key.ts (key records, cache).
 */
export {
  asciiLower,
  type BodyCanonicalizer,
  type BodySink,
  type Canonicalization,
  canonicalizeBody,
  canonicalizeHeader,
  canonicalizeHeaderRelaxed,
  canonicalizeHeaderSimple,
  createBodyCanonicalizer,
  RELAXED_BUFFER_SIZE,
  RelaxedBodyCanonicalizer,
  relaxedHeaderValue,
  SimpleBodyCanonicalizer,
} from './canon.ts';
export {
  type FieldIndex,
  type HeaderField,
  headerField,
  indexFields,
  selectFields,
  signedHeaderText,
  splitRawMessage,
} from './fields.ts';
export {
  DkimKeyCache,
  type DkimKey,
  defaultKeyCache,
  type KeyCacheOptions,
  type KeyLookup,
  type KeyParse,
  keyAllowsHash,
  keyName,
  parseKeyRecord,
  selectKeyRecord,
} from './key.ts';
export {
  checkSignatureTimes,
  type DkimSignature,
  decodeDkimQuotedPrintable,
  type HashAlgorithm,
  isDkimDomain,
  isSelector,
  type KeyType,
  parseAlgorithm,
  parseCanonicalization,
  parseDkimSignature,
  parseSignatureTags,
  parseSignedHeaderList,
  type SignatureParse,
} from './signature.ts';
export {
  decodeBase64,
  parseTagList,
  splitColonList,
  stripFws,
  type Tag,
  type TagListResult,
  withoutTagValue,
} from './tags.ts';
export {
  DEFAULT_DKIM_OPTIONS,
  type DkimDeps,
  type DkimOptions,
  type DkimResult,
  type DkimResultCode,
} from './types.ts';
export {
  DkimVerifier,
  shortBValues,
  verifyMessage,
  verifySignature,
  verifySignatureAsync,
} from './verifier.ts';
