// Where a role's password lives: a secret store pgherd reads and writes, never its database. A reference
// names one: `aws:ID` (AWS Secrets Manager, in the worker's region) or `file:NAME` (a file in the
// environment's folder, PGHERD_SECRET_FILES). The value is JSON `{"username", "password", ...}`, as RDS and
// Secrets Manager's rotation templates keep it: a client reads both at each connect. `{herd}` and
// `{environment}` in a reference are filled in per herd, so each herd's login has its own secret.
import { chmodSync, chownSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  CreateSecretCommand,
  ResourceNotFoundException,
} from '@aws-sdk/client-secrets-manager';
import { secretsClient } from '@/lib/adapters/aws/config';
import { setting } from '@/lib/settings/settings';

export interface SecretValue {
  username: string;
  password: string;
}

/** `aws:pgherd/{environment}/{herd}/app` or `file:{herd}-app`: where a secret is, before it is filled in. */
export const SECRET_REF = /^(aws|file):([A-Za-z0-9_./{}+=@-]{1,200})$/;

/**
 * The reference for one herd, or why it is not one pgherd uses. `pgbouncer`: the login is PgBouncer's auth
 * user, which reads it from its auth_file at each RELOAD (lib/actions/objects/rotate-credentials.action.ts).
 */
export function secretFor(
  ref: string,
  where: { environment: string; herd: string },
): { store: 'aws' | 'file'; name: string } | { store: 'pgbouncer'; name: 'auth_user' } | string {
  if (ref === 'pgbouncer') return { store: 'pgbouncer', name: 'auth_user' };
  const m = SECRET_REF.exec(ref);
  if (!m) return `${ref} is not a secret reference (aws:ID or file:NAME)`;
  const name = (m[2] ?? '').replaceAll('{environment}', where.environment).replaceAll('{herd}', where.herd);
  if (/[{}]/.test(name)) return `${ref}: only {environment} and {herd} are filled in`;
  if (m[1] === 'file' && (name.includes('/') || name.startsWith('.')))
    return `${ref}: a file secret is a name in the environment's folder, with no / and not beginning with a dot`;
  // One worker writes every environment's secrets: an environment's are under its own prefix, never another's.
  if (m[1] === 'aws' && !name.startsWith(`pgherd/${where.environment}/`))
    return `${ref}: an AWS secret of environment ${where.environment} is named pgherd/${where.environment}/... (write aws:pgherd/{environment}/...)`;
  return { store: m[1] as 'aws' | 'file', name };
}

function fileOf(environment: string, name: string): string {
  const dir = (setting('PGHERD_SECRET_FILES') ?? {})[environment];
  if (!dir) throw new Error(`environment ${environment} has no folder for file secrets: add it to PGHERD_SECRET_FILES`);
  return path.join(dir, name);
}

function parsed(text: string, where: string): SecretValue | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`${where} does not hold JSON {"username", "password"}`);
  }
  const o = v as Partial<SecretValue>;
  if (typeof o.username !== 'string' || typeof o.password !== 'string')
    throw new Error(`${where} does not hold JSON {"username", "password"}`);
  return { username: o.username, password: o.password };
}

/** What the secret holds now, or null when there is none yet. Never logged. */
export async function readSecret(environment: string, s: { store: 'aws' | 'file'; name: string }): Promise<SecretValue | null> {
  if (s.store === 'file') {
    let text: string;
    try {
      text = readFileSync(fileOf(environment, s.name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new Error(`file secret ${s.name} of ${environment} cannot be read: ${(err as Error).message}`);
    }
    return parsed(text, `file secret ${s.name}`);
  }
  try {
    const r = await secretsClient().send(new GetSecretValueCommand({ SecretId: s.name }));
    return r.SecretString ? parsed(r.SecretString, `secret ${s.name}`) : null;
  } catch (err) {
    if (err instanceof ResourceNotFoundException) return null;
    throw err;
  }
}

/**
 * Writes `text` to `file` whole: a reader sees the old content or the new, never half. Made anew beside it
 * (O_EXCL: a file or link left there is not written through), 0600 from its first byte, renamed into place.
 */
export function replaceFile(file: string, text: string): void {
  const tmp = `${file}.pgherd-new`;
  // A file there keeps its mode and owner (a group another process reads it by); a new one is 0600.
  let was: { mode: number; uid: number; gid: number } | null = null;
  try {
    const st = statSync(file);
    was = { mode: st.mode & 0o777, uid: st.uid, gid: st.gid };
  } catch {
    /* new */
  }
  rmSync(tmp, { force: true });
  writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
  if (was) {
    try {
      chownSync(tmp, was.uid, was.gid);
    } catch {
      /* not ours to give: it stays the worker's */
    }
    chmodSync(tmp, was.mode & 0o770);
  }
  renameSync(tmp, file);
}

/** Replaces what the secret holds (creates it the first time): a reader sees the old value or the new one, whole. */
export async function writeSecret(environment: string, s: { store: 'aws' | 'file'; name: string }, v: SecretValue): Promise<void> {
  const text = JSON.stringify({ username: v.username, password: v.password });
  if (s.store === 'file') {
    const file = fileOf(environment, s.name);
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    replaceFile(file, text);
    return;
  }
  const c = secretsClient();
  try {
    await c.send(new PutSecretValueCommand({ SecretId: s.name, SecretString: text }));
  } catch (err) {
    if (!(err instanceof ResourceNotFoundException)) throw err;
    await c.send(
      new CreateSecretCommand({ Name: s.name, SecretString: text, Description: 'a login pgherd rotates (docs/credentials.md)' }),
    );
  }
}
