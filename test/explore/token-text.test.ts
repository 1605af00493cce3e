// How tokens read in the explorer: partial UTF-8 characters of byte-level tokens as \xNN
// escapes (whole characters decoded), from the bytes the tokenizer says its tokens hold.
import { afterAll, describe, expect, it } from 'vitest';
import { closeRuntime } from '../../src/bridge/index.js';
import { tokenizerDecodeIds, tokenizerTokenBytes } from '../../src/bridge/ops.js';
import { escapeBytes, tokenDisplay } from '../../src/explore/token-text.js';
import { bundledDefault } from '../../src/model/bundled.js';
import { loadTokenizer } from '../../src/model/language-model.js';
import { py } from '../helpers/python.js';

afterAll(() => closeRuntime());

describe('token text', () => {
  it('decodes whole characters and escapes the other bytes', () => {
    expect(escapeBytes(new Uint8Array([0xe2, 0x82]))).toBe('\\xe2\\x82');
    expect(escapeBytes(new TextEncoder().encode('a€漢'))).toBe('a€漢');
    expect(escapeBytes(new Uint8Array([0x61, 0xe2, 0x82, 0xac, 0xe2, 0xff]))).toBe('a€\\xe2\\xff');
    expect(tokenDisplay('\ufffd', 'e282')).toBe('\\xe2\\x82');
    expect(tokenDisplay(' the', '20746865')).toBe(' the');
    expect(tokenDisplay('\ufffd', null)).toBe('\ufffd');
  });

  it("the bundled byte-level tokenizer's bytes: every U+FFFD token reads as escapes, and a text's tokens' bytes are its UTF-8", async () => {
    const tokenizer = await loadTokenizer(bundledDefault.model);
    const ids = Array.from({ length: 2048 }, (_, i) => i);
    const [decoded, bytes] = await Promise.all([tokenizerDecodeIds(tokenizer, ids), tokenizerTokenBytes(tokenizer, ids)]);
    const partial = ids.filter((i) => decoded[i]!.includes('\ufffd'));
    expect(partial.length).toBeGreaterThan(0);
    for (const i of partial) expect(tokenDisplay(decoded[i]!, bytes[i] ?? null)).toMatch(/^(\\x[0-9a-f]{2}|[^\ufffd])+$/);
    const text = 'Whale — “Ahab” naïve 漢字 €';
    const encoded = await py<number[]>('result = tok(text, add_special_tokens=False)["input_ids"]', { tok: tokenizer, text });
    const hex = await tokenizerTokenBytes(tokenizer, encoded);
    expect(hex.every((h) => h !== null)).toBe(true);
    expect(Buffer.from(hex.join(''), 'hex').toString('utf8')).toBe(text);
  });
});
