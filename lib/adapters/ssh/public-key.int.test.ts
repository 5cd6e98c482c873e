import { readFileSync } from 'node:fs';
import { describe, expect, inject, it } from 'vitest';
import { readLab } from '@/lib/lab/lab';
import { pgherdPublicKey, pgherdPublicKeyFor } from './public-key';

describe('pgherdPublicKey', () => {
  it('derives the same public key ssh-keygen wrote next to the private one', () => {
    const ssh = readLab(inject('labFile')).ssh!;
    const expected = readFileSync(`${ssh.privateKeyPath}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    expect(pgherdPublicKey(ssh.privateKeyPath, '')!.split(' ').slice(0, 2).join(' ')).toBe(expected);
    expect(pgherdPublicKey('', '')).toBeNull();
    expect(pgherdPublicKey('', 'ssh-ed25519 AAAA x\n')).toBe('ssh-ed25519 AAAA x');
  });

  it('shows each environment the key its hosts authorize (PGHERD_SSH_KEYS), the default elsewhere', () => {
    const ssh = readLab(inject('labFile')).ssh!;
    const pub = (file: string) => readFileSync(`${file}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    const shown = (env: string | null) => pgherdPublicKeyFor(env)!.split(' ').slice(0, 2).join(' ');
    expect(shown('staging')).toBe(pub(ssh.environments.staging!.privateKeyPath));
    expect(shown('production')).toBe(pub(ssh.environments.production!.privateKeyPath));
    expect(shown('staging')).not.toBe(shown('production'));
    expect(shown('nowhere')).toBe(pub(ssh.privateKeyPath));
  });
});
