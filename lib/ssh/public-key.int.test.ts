import { readFileSync } from 'node:fs';
import { describe, expect, inject, it } from 'vitest';
import { readLab } from '@/lib/lab/lab';
import { pgherdPublicKey } from './public-key';

describe('pgherdPublicKey', () => {
  it('derives the same public key ssh-keygen wrote next to the private one', () => {
    const ssh = readLab(inject('labFile')).ssh!;
    const expected = readFileSync(`${ssh.privateKeyPath}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    expect(pgherdPublicKey(ssh.privateKeyPath, '')!.split(' ').slice(0, 2).join(' ')).toBe(expected);
    expect(pgherdPublicKey('', '')).toBeNull();
    expect(pgherdPublicKey('', 'ssh-ed25519 AAAA x\n')).toBe('ssh-ed25519 AAAA x');
  });
});
