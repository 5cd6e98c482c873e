// A role's password as Postgres keeps it (pg_authid.rolpassword): a SCRAM-SHA-256 verifier, computed by
// pgherd from the password so that `ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'` carries no cleartext to
// the server (its log, pg_stat_statements, a replica's WAL). RFC 5802 and RFC 7677; the same format
// Postgres's own pg_fe_scram_build_secret writes.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

export interface ScramSecret {
  salt: string;
  iterations: number;
  storedKey: string;
  serverKey: string;
}

/** The SCRAM secret of `password`: a fresh salt, Hi() as PBKDF2 with HMAC-SHA-256, the two keys. */
export function scramSecret(password: string, iterations = 4096, salt: Buffer = randomBytes(16)): ScramSecret {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return { salt: salt.toString('base64'), iterations, storedKey: storedKey.toString('base64'), serverKey: serverKey.toString('base64') };
}

/** `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, as pg_authid keeps it. */
export const scramVerifier = (password: string, salt?: Buffer): string => {
  const s = scramSecret(password, 4096, salt);
  return `SCRAM-SHA-256$${s.iterations}:${s.salt}$${s.storedKey}:${s.serverKey}`;
};

/**
 * Why pgherd will not set `password` (empty, too long, or not printable ASCII: Postgres would SASLprep
 * other characters, and a verifier computed here without it would not match), or null.
 */
export function unfitPassword(password: string): string | null {
  if (password.length < 16) return 'shorter than 16 characters';
  if (password.length > 1024) return 'longer than 1,024 characters';
  if (!/^[\x21-\x7e]+$/.test(password)) return 'not printable ASCII without spaces';
  return null;
}

/** A fresh password: 32 random bytes, base64url (43 characters). */
export const newPassword = () => randomBytes(32).toString('base64url');
