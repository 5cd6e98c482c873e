// pgherd's own credentials for one environment, as files on the worker's machine: the password of its
// Postgres role (PGHERD_PG_CONFIG's `passwordFile` for the environment), its PgBouncer admin password (the
// entry's `pgbouncer.passwordFile`, staged the same way) and its SSH key (PGHERD_SSH_KEYS's file for the
// environment). Rotate pgherd's credentials changes them in two moves:
//
// - staged: the password file gains a line `scram-salt:<salt>:<new password>` (lib/fleet/pg-access.ts
//   reads it within 0.1 s): a server whose verifier has that salt, because pgherd set it or a replica
//   replayed it, is answered with the new password, any other with the old. No login fails in between,
//   whichever member took the change first. The new SSH key waits beside the old one (`<file>.next`).
// - promoted, once every herd of the environment has the new password and every host the new key: the
//   new password alone in the file, the new key renamed over the old (lib/adapters/ssh/keys.ts reads it).
import { appendFileSync, existsSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { utils, type ParsedKey } from 'ssh2';
import { parsePasswordFile, rawPgAccess } from '@/lib/fleet/pg-access';
import { replaceFile } from '@/lib/fleet/objects/secret-store';
import { unfitPassword } from '@/lib/fleet/objects/scram';
import { setting } from '@/lib/settings/settings';

export interface OwnSecrets {
  environment: string;
  /** pgherd's Postgres role in the environment. */
  user: string | null;
  /** The file its password is in; null with the reason it cannot be rotated. */
  passwordFile: string | null;
  passwordWhyNot: string | null;
  /** The file its SSH private key is in; null with the reason it cannot be rotated. */
  keyFile: string | null;
  keyWhyNot: string | null;
  /** Where the environment's hosts keep the keys they authorize (relative: the SSH user's home). */
  authorizedKeys: string;
  /** Patroni's REST password: its file, or why it is not rotated (null and null: no Patroni REST access configured). */
  patroniFile: string | null;
  patroniWhyNot: string | null;
  /** Each member's patroni.yml (`{data_directory}`: the member's). */
  patroniConfigFile: string;
  /** PgBouncer's admin password: its file, or why it is not rotated (null and null: none configured). */
  bouncerFile: string | null;
  bouncerWhyNot: string | null;
}

/** What pgherd can rotate of its own for `environment`, and why not where it cannot. */
export function ownSecretsOf(environment: string): OwnSecrets {
  const config = rawPgAccess();
  const entry = config?.environments[environment];
  // Every secret file the configuration names, by whose it is: one rotated must be no one else's (compared
  // by the file itself: a symlink or another spelling of the path is the same file).
  const named: { whose: string; file: string }[] = [];
  const add = (who: string, e: { passwordFile?: string; pgbouncer?: { passwordFile?: string }; patroni?: { passwordFile?: string } }) => {
    if (e.passwordFile) named.push({ whose: who, file: e.passwordFile });
    if (e.pgbouncer?.passwordFile) named.push({ whose: `${who}'s PgBouncer`, file: e.pgbouncer.passwordFile });
    if (e.patroni?.passwordFile) named.push({ whose: `${who}'s Patroni`, file: e.patroni.passwordFile });
  };
  for (const [e, x] of Object.entries(config?.environments ?? {})) add(e, x);
  if (config?.default) add('default', config.default);
  const othersOf = (file: string, mine: string) => named.filter((n) => n.whose !== mine && sameFile(n.file, file)).map((n) => n.whose);

  let passwordFile: string | null = null;
  let passwordWhyNot: string | null = null;
  if (!config) passwordWhyNot = 'PGHERD_PG_CONFIG is not set: pgherd logs in without a password';
  else if (!entry)
    passwordWhyNot = `PGHERD_PG_CONFIG has no entry for ${environment} (its "default" is every unlisted environment's): give it its own`;
  else if (!entry.passwordFile)
    passwordWhyNot = entry.password
      ? `its password is written in PGHERD_PG_CONFIG itself: give it a passwordFile pgherd can rewrite`
      : 'pgherd logs in there without a password';
  else {
    const shared = othersOf(entry.passwordFile, environment);
    if (shared.length) passwordWhyNot = `its password file ${entry.passwordFile} is also ${shared.join(', ')}'s: give each its own file`;
    else passwordFile = entry.passwordFile;
  }

  const keys = setting('PGHERD_SSH_KEYS') ?? {};
  let keyFile: string | null = keys[environment] ?? null;
  let keyWhyNot: string | null = null;
  if (!keyFile) {
    keyWhyNot = `PGHERD_SSH_KEYS lists no key of its own for ${environment} (PGHERD_SSH_KEY is every unlisted environment's)`;
  } else {
    const mine = keyFile;
    const shared = Object.entries(keys)
      .filter(([e, f]) => e !== environment && sameFile(f, mine))
      .map(([e]) => e);
    const fallback = setting('PGHERD_SSH_KEY');
    if (fallback && sameFile(fallback, mine)) shared.push('PGHERD_SSH_KEY (every unlisted environment)');
    if (shared.length) {
      keyWhyNot = `its key file ${mine} is also ${shared.join(', ')}'s: give each environment its own`;
      keyFile = null;
    }
  }

  let patroniFile: string | null = null;
  let patroniWhyNot: string | null = null;
  const rest = entry?.patroni;
  if (rest && !rest.passwordFile) patroniWhyNot = "Patroni's REST password is written in PGHERD_PG_CONFIG itself: give it a passwordFile";
  else if (rest?.passwordFile) {
    const shared = othersOf(rest.passwordFile, `${environment}'s Patroni`);
    if (shared.length)
      patroniWhyNot = `Patroni's REST password file ${rest.passwordFile} is also ${shared.join(', ')}'s: give each its own`;
    else patroniFile = rest.passwordFile;
  }
  let bouncerFile: string | null = null;
  let bouncerWhyNot: string | null = null;
  const bouncer = entry?.pgbouncer;
  if (bouncer?.password) bouncerWhyNot = "PgBouncer's admin password is written in PGHERD_PG_CONFIG itself: give it a passwordFile";
  else if (bouncer?.passwordFile) {
    const shared = othersOf(bouncer.passwordFile, `${environment}'s PgBouncer`);
    if (shared.length)
      bouncerWhyNot = `PgBouncer's password file ${bouncer.passwordFile} is also ${shared.join(', ')}'s: give each its own`;
    else bouncerFile = bouncer.passwordFile;
  }
  return {
    environment,
    user: entry?.user ?? null,
    bouncerFile,
    bouncerWhyNot,
    patroniFile,
    patroniWhyNot,
    patroniConfigFile: rest?.configFile ?? '/etc/patroni/patroni.yml',
    passwordFile,
    passwordWhyNot,
    keyFile,
    keyWhyNot,
    authorizedKeys: (setting('PGHERD_SSH_AUTHORIZED_KEYS') ?? {})[environment] ?? '.ssh/authorized_keys',
  };
}

/** Whether two paths name one file: the same once symlinks and spellings are resolved (as written, for one not there). */
function sameFile(a: string, b: string): boolean {
  const canonical = (p: string) => {
    try {
      return realpathSync(/*turbopackIgnore: true*/ p);
    } catch {
      return path.resolve(p);
    }
  };
  return canonical(a) === canonical(b);
}

const read = (file: string) => readFileSync(/*turbopackIgnore: true*/ file, 'utf8');

/** The password in force and those staged beside it, by salt. */
export function readPasswordFile(file: string): ReturnType<typeof parsePasswordFile> {
  return parsePasswordFile(read(file), file);
}

/** The file's text again: the password in force, the lines staged before, then `added`. */
function withStaged(now: ReturnType<typeof parsePasswordFile>, added: string): string {
  const saltOf = new Map([...now.next].map(([salt, pw]) => [pw, salt]));
  const staged = now.later.map((pw) => (saltOf.has(pw) ? `scram-salt:${saltOf.get(pw) ?? ''}:${pw}` : `next:${pw}`));
  return `${[now.password, ...staged, added].join('\n')}\n`;
}

/**
 * Stages a new password: a fresh one (32 random bytes) and the salt of the verifier that will carry it,
 * written beside the one in force. Refused when the one in force is one pgherd could not rotate from.
 */
export function stagePassword(file: string): { password: string; salt: Buffer } {
  const now = readPasswordFile(file);
  const unfit = unfitPassword(now.password);
  if (unfit) throw new Error(`the password in ${file} is ${unfit}: pgherd rotates from printable ASCII passwords only`);
  const password = randomBytes(32).toString('base64url');
  const salt = randomBytes(16);
  replaceFile(file, withStaged(now, `scram-salt:${salt.toString('base64')}:${password}`));
  return { password, salt };
}

/** The password staged with `salt` (a step after the one that staged it), or null when it is gone. */
export function stagedPassword(file: string, salt: string): string | null {
  return readPasswordFile(file).next.get(salt) ?? null;
}

/** The staged password with `salt` becomes the one in force, alone; false when it is not there. */
export function promotePassword(file: string, salt: string): boolean {
  const p = stagedPassword(file, salt);
  if (!p) return false;
  replaceFile(file, `${p}\n`);
  return true;
}

/** Stages a new password tried where the one in force is refused (Patroni's REST API): `next:<password>`. */
export function stageNext(file: string): string {
  const now = readPasswordFile(file);
  const password = randomBytes(32).toString('base64url');
  replaceFile(file, withStaged(now, `next:${password}`));
  return password;
}

/** `password`, staged in `file`, becomes the one in force, alone; false when it is not there. */
export function promoteNext(file: string, password: string): boolean {
  if (!readPasswordFile(file).later.includes(password)) return false;
  replaceFile(file, `${password}\n`);
  return true;
}

/** The public key (`ssh-ed25519 AAAA…`, no comment) of a private key file or text. */
export function publicKeyOf(privateKey: string | Buffer): string {
  const parsed = utils.parseKey(privateKey);
  if (parsed instanceof Error) throw new Error(`not a private key ssh2 can read: ${parsed.message}`);
  const key: ParsedKey | undefined = Array.isArray(parsed) ? (parsed as ParsedKey[])[0] : parsed;
  if (!key) throw new Error('no key in it');
  return `${key.type} ${key.getPublicSSH().toString('base64')}`;
}

/** The key waiting beside `file` (its `.next`), made now when there is none or `fresh`; its public line. */
export function stageKey(file: string, comment: string, fresh: boolean): { publicLine: string; privateKey: string } {
  const next = `${file}.next`;
  if (!fresh && existsSync(next)) {
    const privateKey = read(next);
    return { publicLine: `${publicKeyOf(privateKey)} ${comment}`, privateKey };
  }
  const pair = utils.generateKeyPairSync('ed25519', { comment });
  rmSync(next, { force: true });
  writeFileSync(next, pair.private, { mode: 0o600, flag: 'wx' });
  return { publicLine: `${publicKeyOf(pair.private)} ${comment}`, privateKey: pair.private };
}

/**
 * The key waiting beside `file` replaces it, if it is `staged` (its public part); the old key's public part is
 * added to `<file>.retired` (to be taken off the hosts) and `<file>.pub`, where there is one, says the new.
 * False when the waiting key is not `staged`.
 */
export function promoteKey(file: string, staged: string, publicLine: string): boolean {
  const next = `${file}.next`;
  if (!existsSync(next) || publicKeyOf(read(next)) !== staged) return false;
  const old = publicKeyOf(read(file));
  appendFileSync(`${file}.retired`, `${old}\n`, { mode: 0o600 });
  renameSync(next, file);
  if (existsSync(`${file}.pub`)) replaceFile(`${file}.pub`, `${publicLine}\n`);
  return true;
}

/** The public parts of the keys `file` held before (`<file>.retired`): taken off the hosts at each rotation. */
export function retiredKeys(file: string): string[] {
  try {
    return [
      ...new Set(
        read(`${file}.retired`)
          .split('\n')
          .filter((l) => /^ssh-[a-z0-9-]+ [A-Za-z0-9+/=]+$/.test(l)),
      ),
    ];
  } catch {
    return [];
  }
}
