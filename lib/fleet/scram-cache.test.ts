import { pbkdf2Sync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keeping } from '@/lib/fleet/scram-cache';

const real = (password: string, salt: Uint8Array, iterations: number) => {
  const out = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  return Promise.resolve(out.buffer.slice(out.byteOffset, out.byteOffset + out.length));
};

describe('the SCRAM SaltedPassword kept per password, salt and iterations', () => {
  it('computes it once for the same three, again for another salt, password or count, and the same bytes each time', async () => {
    let calls = 0;
    const derive = keeping((p, s, i) => {
      calls++;
      return real(p, s, i);
    });
    const salt = Buffer.from('salt-of-server-a');
    const first = Buffer.from(await derive('secret', salt, 4096));
    const again = Buffer.from(await derive('secret', Buffer.from('salt-of-server-a'), 4096));
    expect(calls).toBe(1);
    expect(again.equals(first)).toBe(true);
    expect(first.equals(Buffer.from(await real('secret', salt, 4096)))).toBe(true);
    await derive('secret', Buffer.from('salt-of-server-b'), 4096);
    await derive('other', salt, 4096);
    await derive('secret', salt, 8192);
    expect(calls).toBe(4);
  });

  it('hands out copies: a caller writing into what it got changes nothing kept', async () => {
    const derive = keeping(real);
    const salt = Buffer.from('copies');
    const got = new Uint8Array(await derive('pw', salt, 4096));
    const before = Buffer.from(got);
    got.fill(0);
    expect(Buffer.from(await derive('pw', salt, 4096)).equals(before)).toBe(true);
  });

  it('keeps no failure: a derivation that failed is computed again next time', async () => {
    let calls = 0;
    const derive = keeping((p, s, i) => (++calls === 1 ? Promise.reject(new Error('no crypto')) : real(p, s, i)));
    const salt = Buffer.from('fails-once');
    await expect(derive('pw', salt, 4096)).rejects.toThrow('no crypto');
    await expect(derive('pw', salt, 4096)).resolves.toBeInstanceOf(ArrayBuffer);
    expect(calls).toBe(2);
  });
});
