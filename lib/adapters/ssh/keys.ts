// pgherd's SSH client keys, per environment: a staging row cannot authenticate to a production host
// even if everything above the SSH layer failed, because production's hosts authorize production's
// key only. PGHERD_SSH_KEYS maps environment names to private key files; PGHERD_SSH_KEY is the key of
// every environment not listed (a one-environment install needs nothing else).
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const keysSchema = z.record(z.string().min(1).max(63), z.string().startsWith('/', 'an absolute path to a private key file').max(4096));

export interface SshKeys {
  /** The key of environments not listed (PGHERD_SSH_KEY); null: none. */
  fallback: Buffer | null;
  byEnvironment: Map<string, Buffer>;
}

type Reader = (file: string) => Buffer;
const readKey: Reader = (f) => readFileSync(/*turbopackIgnore: true*/ f);

/** Parses PGHERD_SSH_KEYS (a JSON object: environment name to key file) beside the default key file; throws saying what is wrong. */
export function parseSshKeys(json: string | undefined, fallbackPath: string | undefined, read: Reader = readKey): SshKeys {
  const byEnvironment = new Map<string, Buffer>();
  if (json?.trim()) {
    let raw: unknown;
    try {
      raw = JSON.parse(json);
    } catch (err) {
      throw new Error(`PGHERD_SSH_KEYS is not JSON (an object of environment name to key file): ${(err as Error).message}`);
    }
    const r = keysSchema.safeParse(raw);
    if (!r.success)
      throw new Error(`PGHERD_SSH_KEYS: ${r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
    for (const [env, file] of Object.entries(r.data)) {
      try {
        byEnvironment.set(env, read(file));
      } catch (err) {
        throw new Error(`PGHERD_SSH_KEYS: ${env}: cannot read ${file}: ${(err as Error).message}`);
      }
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
export const sshKeysFromEnv = (): SshKeys => parseSshKeys(process.env.PGHERD_SSH_KEYS, process.env.PGHERD_SSH_KEY || undefined);

/** The key for a server of `environment`; throws naming the setting when there is none. */
export function keyFor(keys: SshKeys, environment: string | null | undefined): Buffer {
  const k = (environment ? keys.byEnvironment.get(environment) : undefined) ?? keys.fallback;
  if (!k)
    throw new Error(
      `no SSH key for environment ${JSON.stringify(environment ?? '(none)')}: set it in PGHERD_SSH_KEYS, or PGHERD_SSH_KEY for every environment`,
    );
  return k;
}
