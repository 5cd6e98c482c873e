// pgherd's SSH client keys, per environment: a staging row cannot authenticate to a production host
// even if everything above the SSH layer failed, because production's hosts authorize production's
// key only. PGHERD_SSH_KEYS maps environment names to private key files; PGHERD_SSH_KEY is the key of
// every environment not listed (a one-environment install needs nothing else).
import { readFileSync, statSync } from 'node:fs';
import { setting } from '@/lib/settings/settings';

export interface SshKeys {
  /** The key of environments not listed (PGHERD_SSH_KEY); null: none. */
  fallback: Buffer | null;
  byEnvironment: Map<string, Buffer>;
}

type Reader = (file: string) => Buffer;
const readKey: Reader = (f) => readFileSync(/*turbopackIgnore: true*/ f);

/**
 * Reads the key files of PGHERD_SSH_KEYS (environment name to key file, as the settings checked it)
 * and of the default key; throws naming the setting and the file that cannot be read.
 */
export function parseSshKeys(files: Record<string, string> | null, fallbackPath: string | undefined, read: Reader = readKey): SshKeys {
  const byEnvironment = new Map<string, Buffer>();
  for (const [env, file] of Object.entries(files ?? {})) {
    try {
      byEnvironment.set(env, read(file));
    } catch (err) {
      throw new Error(`PGHERD_SSH_KEYS: ${env}: cannot read ${file}: ${(err as Error).message}`);
    }
  }
  let fallback: Buffer | null = null;
  if (fallbackPath) {
    try {
      fallback = read(fallbackPath);
    } catch (err) {
      throw new Error(`PGHERD_SSH_KEY: cannot read ${fallbackPath}: ${(err as Error).message}`);
    }
  }
  return { fallback, byEnvironment };
}

/** The keys the process's settings name. */
export const sshKeysFromEnv = (): SshKeys => parseSshKeys(setting('PGHERD_SSH_KEYS'), setting('PGHERD_SSH_KEY') ?? undefined);

/** How often the key files' modification times are looked at: a rotated key is used within it. */
export const KEY_FILES_CHECK_MS = 100;

/**
 * The keys the settings name, read again when a file changes (another inode or time): Rotate pgherd's
 * credentials renames a new key into place, and the next connection authenticates with it, no restart.
 */
export function liveSshKeys(fallbackPath: string | undefined = setting('PGHERD_SSH_KEY') ?? undefined): () => SshKeys {
  const read = () => parseSshKeys(setting('PGHERD_SSH_KEYS'), fallbackPath);
  const files = () => [...Object.values(setting('PGHERD_SSH_KEYS') ?? {}), fallbackPath ?? ''].filter(Boolean);
  const stamp = () =>
    files()
      .map((f) => {
        try {
          const st = statSync(/*turbopackIgnore: true*/ f);
          return `${f}:${st.ino}:${st.mtimeMs}`;
        } catch {
          return `${f}:-`;
        }
      })
      .join(',');
  let seen = stamp();
  let keys = read();
  let checkedAt = Date.now();
  return () => {
    if (Date.now() - checkedAt < KEY_FILES_CHECK_MS) return keys;
    checkedAt = Date.now();
    const now = stamp();
    if (now !== seen) {
      // A file caught halfway (it is renamed into place, so not by pgherd) keeps the keys read before.
      try {
        keys = read();
        seen = now;
      } catch {
        /* the next look tries again */
      }
    }
    return keys;
  };
}

/** The key for a server of `environment`; throws naming the setting when there is none. */
export function keyFor(keys: SshKeys, environment: string | null | undefined): Buffer {
  const k = (environment ? keys.byEnvironment.get(environment) : undefined) ?? keys.fallback;
  if (!k)
    throw new Error(
      `no SSH key for environment ${JSON.stringify(environment ?? '(none)')}: set it in PGHERD_SSH_KEYS, or PGHERD_SSH_KEY for every environment`,
    );
  return k;
}
