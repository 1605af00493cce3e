/**
 * How a token reads in the explorer. A byte-level token that holds part of a character
 * decodes to U+FFFD on its own; tokenizer viewers show its bytes instead, as `\xNN` escapes,
 * with whatever whole characters it holds decoded.
 */

/** The length of the UTF-8 sequence that starts with byte `b` (0: not a lead byte). */
function sequenceLength(b: number): number {
  if (b < 0x80) return 1;
  if (b >= 0xc2 && b <= 0xdf) return 2;
  if (b >= 0xe0 && b <= 0xef) return 3;
  if (b >= 0xf0 && b <= 0xf4) return 4;
  return 0;
}

const strict = new TextDecoder('utf-8', { fatal: true });

/** `bytes` as text: whole UTF-8 characters decoded, every other byte as `\xNN`. */
export function escapeBytes(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const n = sequenceLength(bytes[i]!);
    if (n > 0 && i + n <= bytes.length) {
      try {
        out += strict.decode(bytes.subarray(i, i + n));
        i += n;
        continue;
      } catch {
        // not a whole character: escaped below
      }
    }
    out += `\\x${bytes[i]!.toString(16).padStart(2, '0')}`;
    i += 1;
  }
  return out;
}

/** The explorer's text for a token: its decoded text, or its escaped bytes where decoding lost some (U+FFFD) and they are known (hex). */
export function tokenDisplay(decoded: string, hex: string | null): string {
  if (!decoded.includes('\ufffd') || hex === null) return decoded;
  return escapeBytes(Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16)));
}
