import { describe, expect, it } from 'vitest';
import { idMessage, idNumber, idText, MAX_BIG_ID, MAX_ID, maxIdOfType, parseId } from './ids';

describe('ids', () => {
  it('in a URL: integer ids up to 2^31 - 1; bigint ids up to 2^53 - 1, never past it nor rounded to it', () => {
    for (const ok of ['1', '42', String(MAX_ID)]) expect(parseId(ok), ok).toBe(Number(ok));
    for (const no of ['0', '-1', '01', '1e3', '3.0', ' 1', '', 'abc', String(MAX_ID + 1), String(2 ** 53)])
      expect(parseId(no), no).toBeNull();
    for (const ok of [String(MAX_ID + 1), String(2 ** 40), String(MAX_BIG_ID)]) expect(parseId(ok, MAX_BIG_ID), ok).toBe(Number(ok));
    // 2^53 + 1 reads as 2^53 in a JavaScript number: refused, not taken for another id.
    for (const no of [String(2 ** 53), '9007199254740993', '12345678901234567', '0', '1e3']) expect(parseId(no, MAX_BIG_ID), no).toBeNull();
  });

  it('in a body or a form: the field named, with its range', () => {
    expect(idNumber('each id').safeParse(MAX_ID + 1).error?.issues[0]?.message).toBe('each id is a whole number from 1 to 2147483647');
    expect(idNumber('each id', MAX_BIG_ID).parse(MAX_ID + 1)).toBe(MAX_ID + 1);
    for (const bad of [2 ** 53, 2 ** 53 + 2, 0, 1.5, '1'])
      expect(idNumber('each id', MAX_BIG_ID).safeParse(bad).error?.issues[0]?.message, String(bad)).toBe(
        'each id is a whole number from 1 to 9007199254740991',
      );
    expect(idText('upstreamInstanceId', MAX_BIG_ID).parse(String(MAX_BIG_ID))).toBe(MAX_BIG_ID);
    for (const bad of [String(2 ** 53), '9007199254740993', '12345678901234567', '1e3', '0x2a'])
      expect(idText('upstreamInstanceId', MAX_BIG_ID).safeParse(bad).success, bad).toBe(false);
    expect(idText('herdId').safeParse(String(MAX_ID + 1)).error?.issues[0]?.message).toBe(idMessage('herdId'));
  });

  it('take their range from the column type', () => {
    expect(['serial', 'integer'].map(maxIdOfType)).toEqual([MAX_ID, MAX_ID]);
    expect(['bigserial', 'bigint'].map(maxIdOfType)).toEqual([MAX_BIG_ID, MAX_BIG_ID]);
  });
});
