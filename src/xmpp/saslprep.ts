/**
 * SASLprep (RFC 4013, a stringprep profile) with Node built-ins: mapping, NFKC, prohibited output,
 * bidi rules. Used for SCRAM/PLAIN user names and passwords.
 *
 * Approximation: stringprep's tables are Unicode 3.2; here Node's ICU decides what is unassigned and
 * which characters are right-to-left (by script: Hebrew, Arabic, Syriac, Thaana, NKo and relatives,
 * since JavaScript regular expressions cannot test Bidi_Class).
 */

/** RFC 3454 B.1: commonly mapped to nothing. */
// biome-ignore lint/suspicious/noMisleadingCharacterClass: code points listed one by one, never combined
const MAPPED_TO_NOTHING = /[\u034F\u00AD\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/gu;
/** RFC 3454 C.1.2: non-ASCII space characters, mapped to SPACE. */
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/gu;
/** C.2 controls, C.3 private use, C.4 non-characters, C.5 surrogates, C.6-C.9, and unassigned. */
const PROHIBITED =
  /[\p{Cc}\p{Co}\p{Cs}\p{Cn}\u06DD\u070F\u180E\u200C-\u200F\u2028-\u202E\u2060-\u2063\u206A-\u206F\uFEFF\uFFF9-\uFFFD\u2FF0-\u2FFB\u{1D173}-\u{1D17A}\u{E0001}\u{E0020}-\u{E007F}]/u;
const DISPLAY_CHANGING = /\u0340|\u0341/u;
const RAND_AL =
  /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}\u200F]/u;
const L_CAT = /\p{L}/u;

export class SaslprepError extends Error {
  override readonly name = 'SaslprepError';
}

/** Prepares a string; throws SaslprepError for prohibited input. `allowUnassigned` is for queries. */
export function saslprep(input: string, options: { allowUnassigned?: boolean } = {}): string {
  const mapped = input.replace(MAPPED_TO_NOTHING, '').replace(NON_ASCII_SPACE, ' ');
  const s = mapped.normalize('NFKC');
  if (s.length === 0) return s;
  for (const ch of s) {
    if (PROHIBITED.test(ch) || DISPLAY_CHANGING.test(ch)) {
      if (options.allowUnassigned === true && /\p{Cn}/u.test(ch)) continue;
      throw new SaslprepError(`prohibited character U+${ch.codePointAt(0)!.toString(16).toUpperCase()}`);
    }
  }
  // RFC 3454 §6 bidi: a string with RandALCat characters has no LCat ones and starts and ends with RandALCat.
  let hasRandAl = false;
  let hasL = false;
  for (const ch of s) {
    if (RAND_AL.test(ch)) hasRandAl = true;
    else if (L_CAT.test(ch)) hasL = true;
  }
  if (hasRandAl) {
    const chars = Array.from(s);
    if (hasL) throw new SaslprepError('mixes right-to-left and left-to-right characters');
    if (!RAND_AL.test(chars[0]!) || !RAND_AL.test(chars[chars.length - 1]!))
      throw new SaslprepError('right-to-left string must start and end with a right-to-left character');
  }
  return s;
}
