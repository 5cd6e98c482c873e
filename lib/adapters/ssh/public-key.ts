// pgherd's public key, for the line admins add to authorized_keys on each database host.
import { readFileSync } from 'node:fs';
import { utils, type ParsedKey } from 'ssh2';
import { setting } from '@/lib/settings/settings';

/**
 * "ssh-ed25519 AAAA... pgherd": PGHERD_SSH_PUBLIC_KEY when set (so the web process need not hold the
 * private key), else derived from the private key file PGHERD_SSH_KEY; null when neither is set.
 */
export function pgherdPublicKey(
  path: string | null = setting('PGHERD_SSH_KEY'),
  given: string | null = setting('PGHERD_SSH_PUBLIC_KEY'),
): string | null {
  if (given) return given.trim();
  if (!path) return null;
  const key = utils.parseKey(readFileSync(path));
  if (key instanceof Error) throw new Error(`PGHERD_SSH_KEY (${path}) is not a private key ssh2 can read: ${key.message}`);
  const k: ParsedKey | undefined = Array.isArray(key) ? (key as ParsedKey[])[0] : key;
  if (!k) throw new Error(`PGHERD_SSH_KEY (${path}) holds no key`);
  return `${k.type} ${k.getPublicSSH().toString('base64')} pgherd`;
}

/**
 * The public key pgherd offers to `environment`'s hosts: that environment's key in PGHERD_SSH_KEYS,
 * else the default (pgherdPublicKey). Null when none is set.
 */
export function pgherdPublicKeyFor(environment: string | null, keys = setting('PGHERD_SSH_KEYS')): string | null {
  // Own keys only: an environment named like a prototype's member (constructor) is no key file.
  const file = environment && keys && Object.hasOwn(keys, environment) ? keys[environment] : undefined;
  if (file !== undefined) return pgherdPublicKey(file, '');
  return pgherdPublicKey();
}
