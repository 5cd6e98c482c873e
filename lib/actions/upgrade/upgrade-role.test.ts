import { describe, expect, it } from 'vitest';
import { scramSecret } from './upgrade-role';

describe('the upgrade role\u2019s password', () => {
  it('reaches the publisher only as a SCRAM-SHA-256 secret Postgres would compute', () => {
    // Postgres 15: SET password_encryption = 'scram-sha-256'; the secret for "pencil" with this salt.
    const salt = Buffer.from('c2FsdHNhbHRzYWx0MTIzNA==', 'base64');
    const s = scramSecret('pencil', salt);
    expect(s).toMatch(/^SCRAM-SHA-256\$4096:c2FsdHNhbHRzYWx0MTIzNA==\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/);
    expect(s).not.toContain('pencil');
    expect(scramSecret('pencil', salt)).toBe(s);
  });
});
