// SCRAM-SHA-256's costly part on the client is SaltedPassword: PBKDF2 of the password over the salt the
// server sent, 4,096 iterations by default (RFC 5802 §3, RFC 7677). It depends on the password, the
// salt and the iteration count alone, and a server keeps the salt until the role's password changes, so
// RFC 5802 §5.1 lets a client keep it: "the client can cache ClientKey / ServerKey ... so that the
// Hi() function need only be computed once per password, salt and iteration count". A worker that
// connects to the same instance again (a bulk restart's probes, a kept session opened anew, a refresh
// after a restart) pays a few milliseconds of CPU less for each.
//
// node-postgres computes it in `deriveKey` of its crypto utilities, which its SASL code calls through
// the module's exports: that one function is wrapped here, once per process. What is kept is as good as
// the password for a SCRAM login to that server, and lives where the password already lives: this
// process's memory, never a file or a log. A changed password has another salt, so it misses.
import { createHash, randomBytes } from 'node:crypto';
import pgCrypto from 'pg/lib/crypto/utils';
import { logLine } from '@/lib/adapters/log/log';

type DeriveKey = (password: string, salt: Uint8Array, iterations: number) => Promise<ArrayBuffer>;

/** Entries kept at most: one per (password, server's salt, iterations); the oldest go first. */
const MAX_ENTRIES = 100_000;

const kept = new Map<string, Promise<ArrayBuffer>>();

/**
 * A password rotating (lib/fleet/objects/own-credentials.ts): the one in force, and the next ones by the salt
 * of the verifier pgherd set with each. A connection with pgherd's own access is given a token in place of
 * the password while it rotates; the server says its salt before the client proves anything, and the token
 * is answered with the next password where the server's verifier has that salt (it took the new password, or
 * replayed it), else with the one in force. Neither password is ever tried and refused. A password given
 * for a login of its own (loginClient) is never a token, so never swapped.
 */
interface Rotating {
  password: string;
  next: Map<string, string>;
}
const rotating = new Map<string, Rotating>();
const TOKEN = 'pgherd-rotating:';

/**
 * Tokens kept at most: the password files are read again (a token each time one rotates) and a connection
 * given a token just before keeps using it until its server's salt arrives, so tokens are not forgotten at
 * once; the oldest go first.
 */
const MAX_TOKENS = 100;

/** Forgets every rotating password (tests; the password files read again keep earlier tokens, see MAX_TOKENS). */
export function forgetRotatingPasswords(): void {
  rotating.clear();
}

/**
 * What a connection with pgherd's own access is given for `password` with these next passwords (by their
 * verifiers' salts, base64): the password itself when none rotate, or when node-postgres could not be hooked.
 */
export function rotatingPassword(password: string, next: ReadonlyMap<string, string>): string {
  if (!next.size || !hooked) return password;
  const token = `${TOKEN}${randomBytes(16).toString('hex')}`;
  rotating.set(token, { password, next: new Map(next) });
  if (rotating.size > MAX_TOKENS) {
    const oldest = rotating.keys().next().value;
    if (oldest !== undefined) rotating.delete(oldest);
  }
  return token;
}

/** The password to derive for `salt`: a token's next password whose verifier has it, or its password in force. */
export function passwordForSalt(given: string, salt: Uint8Array): string {
  if (!given.startsWith(TOKEN)) return given;
  const r = rotating.get(given);
  if (!r) return given;
  return r.next.get(Buffer.from(salt).toString('base64')) ?? r.password;
}

const counts = { derived: 0, reused: 0 };

/** How many SaltedPasswords this process computed, and how many it found kept (tests and the bench read it). */
export function scramCacheCounts(): { derived: number; reused: number } {
  return { ...counts };
}

function keyOf(password: string, salt: Uint8Array, iterations: number): string {
  // The password is not a key in the map: its SHA-256 is (the map is printed by nothing, but a heap
  // snapshot of a worker should not list the passwords twice).
  const h = createHash('sha256').update(password, 'utf8').digest('base64');
  return `${h}:${Buffer.from(salt).toString('base64')}:${iterations}`;
}

/** `derive` wrapped: computed once per (password, salt, iterations), a failure not kept. */
export function keeping(derive: DeriveKey): DeriveKey {
  return (given, salt, iterations) => {
    const password = passwordForSalt(given, salt);
    const key = keyOf(password, salt, iterations);
    const hit = kept.get(key);
    if (hit) {
      counts.reused++;
      // Most recently used last: the map's order is the eviction order.
      kept.delete(key);
      kept.set(key, hit);
      return hit.then((b) => b.slice(0));
    }
    counts.derived++;
    const made = derive(password, salt, iterations);
    kept.set(key, made);
    made.catch(() => kept.delete(key));
    if (kept.size > MAX_ENTRIES) {
      const oldest = kept.keys().next().value;
      if (oldest !== undefined) kept.delete(oldest);
    }
    return made.then((b) => b.slice(0));
  };
}

let installed = false;
/** node-postgres's deriveKey is wrapped here: tokens are answered (else rotatingPassword hands out passwords). */
let hooked = false;

/** Wraps node-postgres's `deriveKey` in this process (once; later calls do nothing). */
export function installScramCache(): void {
  if (installed) return;
  // The module object node-postgres's SASL code reads `deriveKey` from (CommonJS: one per process).
  const utils = pgCrypto;
  installed = true;
  // A node-postgres that moved it logs in as before, paying PBKDF2 each time (pg-access.int.test.ts notices).
  if (!utils || typeof utils.deriveKey !== 'function') {
    logLine('scram_cache.not_installed', { reason: 'pg/lib/crypto/utils has no deriveKey' });
    return;
  }
  utils.deriveKey = keeping(utils.deriveKey.bind(utils));
  hooked = true;
}
