import assert from 'node:assert/strict';
import { test } from 'node:test';
import { utf8Length, writeUtf8 } from './codegen.js';

test('strings of every length up to 40, ASCII and not, measure and copy as UTF-8', () => {
  const u8 = new Uint8Array(256);
  const dv = new DataView(u8.buffer);
  for (const unit of ['a', 'é', '€', '😀']) {
    for (let len = 0; len <= 40; len++) {
      const s = 'x'.repeat(len) + (len % 3 === 0 ? unit : '');
      const expected = Buffer.from(s, 'utf8');
      assert.equal(utf8Length(s), expected.length, `length of ${JSON.stringify(s)}`);
      u8.fill(0xee);
      writeUtf8(dv, u8, 1, s, expected.length);
      assert.deepEqual(Buffer.from(u8.subarray(1, 1 + expected.length)), expected);
      assert.equal(u8[0], 0xee);
      assert.equal(u8[1 + expected.length], 0xee, 'nothing written past the string');
    }
  }
});
