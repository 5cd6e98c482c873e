// Sign-in against a directory with ldapts: find the user with a service bind, bind as the user with
// the password, find the user's groups. Several server URLs are tried in order (failover); ldaps://
// and StartTLS verify the server's certificate unless told otherwise (a CA file can be given).
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { Client, InvalidCredentialsError, type Entry } from 'ldapts';
import { z } from 'zod';
import { setting } from '@/lib/settings/settings';

export const ldapConfigSchema = z
  .object({
    urls: z
      .array(z.string().regex(/^ldaps?:\/\/[^\s/]+\/?$/, 'ldap://host:port or ldaps://host:port'))
      .min(1)
      .max(10),
    bindDn: z.string().min(1).max(1000),
    bindPassword: z.string().max(1000).optional(),
    bindPasswordFile: z.string().max(1000).optional(),
    userBase: z.string().min(1).max(1000),
    /** {username} is replaced by the escaped username. */
    userFilter: z.string().max(1000).default('(uid={username})'),
    groupBase: z.string().min(1).max(1000),
    /** The attribute that holds the user's canonical name (its case and form are what pgherd records). */
    usernameAttribute: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]{0,63}$/)
      .default('uid'),
    /** {userDN} is replaced by the escaped DN of the user. */
    groupFilter: z.string().max(1000).default('(member={userDN})'),
    startTls: z.boolean().default(false),
    /** PEM file of the CA that signed the servers' certificates (default: the system's CAs). */
    caFile: z.string().max(1000).optional(),
    /** Off only for a lab: the certificate is not checked. */
    tlsVerify: z.boolean().default(true),
    timeoutMs: z.number().int().min(100).max(60_000).default(5000),
  })
  .strict()
  .refine((c) => !!c.bindPassword !== !!c.bindPasswordFile, 'give bindPassword or bindPasswordFile, not both');

export type LdapConfig = z.infer<typeof ldapConfigSchema>;

/** PGHERD_LDAP_CONFIG: a JSON file; unset, sign-in uses local accounts only. */
export function ldapConfig(file = setting('PGHERD_LDAP_CONFIG')): LdapConfig | null {
  if (!file) return null;
  const parsed = ldapConfigSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success)
    throw new Error(
      `PGHERD_LDAP_CONFIG (${file}): ${parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

/** RFC 4515: a value inside a filter cannot change the filter. */
export function escapeFilterValue(v: string): string {
  return v.replace(/[\\*()\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * A configured filter with each `{name}` placeholder replaced by its value, escaped, in one pass (a
 * value that itself holds `{username}` stays as it is). A function replacer, never a replacement
 * string: String.replace reads `$'`, `$&` and `` $` `` in one as patterns, which would let a username
 * paste unescaped parts of the filter back into it.
 */
export function fillFilter(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (placeholder, name: string) =>
    Object.hasOwn(values, name) ? escapeFilterValue(values[name] ?? '') : placeholder,
  );
}

export type LdapResult =
  | {
      ok: true;
      dn: string;
      displayName: string;
      email: string;
      groups: string[];
      /** The directory's own spelling of the name. */ username: string;
    }
  | { ok: false; reason: 'invalid' | 'unreachable'; message: string };

function tlsOptions(cfg: LdapConfig, url: string): ConnectionOptions {
  const host = new URL(url).hostname;
  return {
    // SNI takes names only; the certificate is checked against the host either way.
    ...(isIP(host) ? {} : { servername: host }),
    rejectUnauthorized: cfg.tlsVerify,
    ...(cfg.caFile ? { ca: readFileSync(cfg.caFile) } : {}),
  };
}

/** A client for `url`; TLS options only for ldaps:// (given to a plain ldap:// client, ldapts speaks TLS at once). */
function clientFor(cfg: LdapConfig, url: string): Client {
  return new Client({
    url,
    timeout: cfg.timeoutMs,
    connectTimeout: cfg.timeoutMs,
    ...(url.startsWith('ldaps://') ? { tlsOptions: tlsOptions(cfg, url) } : {}),
  });
}

function readBindPasswordFile(file: string | undefined): string {
  if (!file) throw new Error('PGHERD_LDAP_CONFIG: give bindPassword or bindPasswordFile');
  return readFileSync(file, 'utf8').trim();
}

/** Connects to the first server that answers (and, with StartTLS, upgrades); service-bound. */
async function connect(cfg: LdapConfig): Promise<{ client: Client; url: string } | { error: string }> {
  const errors: string[] = [];
  const password = cfg.bindPassword ?? readBindPasswordFile(cfg.bindPasswordFile);
  for (const url of cfg.urls) {
    const client = clientFor(cfg, url);
    try {
      if (cfg.startTls && url.startsWith('ldap://')) await client.startTLS(tlsOptions(cfg, url));
      await client.bind(cfg.bindDn, password);
      return { client, url };
    } catch (err) {
      errors.push(`${url}: ${(err as Error).message}`);
      await client.unbind().catch(() => {});
    }
  }
  return { error: errors.join('; ') };
}

/** The entries the user filter finds for `username` (one, when the directory knows them). */
async function findUser(client: Client, cfg: LdapConfig, username: string): Promise<Entry[]> {
  const filter = fillFilter(cfg.userFilter, { username });
  const { searchEntries } = await client.search(cfg.userBase, {
    scope: 'sub',
    filter,
    attributes: ['cn', 'displayName', 'mail', cfg.usernameAttribute],
    sizeLimit: 2,
  });
  return searchEntries;
}

/** The DNs of the user's groups, sorted. */
async function groupsOf(client: Client, cfg: LdapConfig, dn: string, username: string): Promise<string[]> {
  const groupFilter = fillFilter(cfg.groupFilter, { userDN: dn, username });
  const { searchEntries } = await client.search(cfg.groupBase, { scope: 'sub', filter: groupFilter, attributes: ['cn'], sizeLimit: 1000 });
  return searchEntries.map((g) => g.dn).sort();
}

export async function ldapAuthenticate(cfg: LdapConfig, username: string, password: string): Promise<LdapResult> {
  // An empty password is an anonymous ("unauthenticated") bind that many servers accept.
  if (!password) return { ok: false, reason: 'invalid', message: 'empty password' };
  const c = await connect(cfg);
  if ('error' in c) return { ok: false, reason: 'unreachable', message: c.error };
  try {
    const [user, ...others] = await findUser(c.client, cfg, username);
    if (!user || others.length) return { ok: false, reason: 'invalid', message: user ? 'more than one entry matches' : 'no such user' };
    const userClient = clientFor(cfg, c.url);
    try {
      if (cfg.startTls && c.url.startsWith('ldap://')) await userClient.startTLS(tlsOptions(cfg, c.url));
      await userClient.bind(user.dn, password);
    } catch (err) {
      if (err instanceof InvalidCredentialsError) return { ok: false, reason: 'invalid', message: 'wrong password' };
      return { ok: false, reason: 'unreachable', message: (err as Error).message };
    } finally {
      await userClient.unbind().catch(() => {});
    }
    const groups = await groupsOf(c.client, cfg, user.dn, username);
    const first = (v: Entry[string] | undefined) => (Array.isArray(v) ? String(v[0] ?? '') : v === undefined ? '' : String(v));
    return {
      ok: true,
      dn: user.dn,
      displayName: first(user.displayName) || first(user.cn),
      email: first(user.mail),
      groups,
      username: first(user[cfg.usernameAttribute]) || username,
    };
  } catch (err) {
    return { ok: false, reason: 'unreachable', message: (err as Error).message };
  } finally {
    await c.client.unbind().catch(() => {});
  }
}

/**
 * What the directory says of a user now, with the service account only (no password): found with
 * their groups, gone (the user filter finds no entry: deleted, or excluded by a filter that leaves out
 * disabled accounts), or not known because no server answered.
 */
export type LdapLookup = { found: true; dn: string; groups: string[] } | { found: false; reason: 'gone' | 'unreachable'; message: string };

export async function ldapLookup(cfg: LdapConfig, username: string): Promise<LdapLookup> {
  const c = await connect(cfg);
  if ('error' in c) return { found: false, reason: 'unreachable', message: c.error };
  try {
    const [user, ...others] = await findUser(c.client, cfg, username);
    if (!user || others.length)
      return { found: false, reason: 'gone', message: user ? 'more than one directory entry matches' : 'no longer in the directory' };
    return { found: true, dn: user.dn, groups: await groupsOf(c.client, cfg, user.dn, username) };
  } catch (err) {
    return { found: false, reason: 'unreachable', message: (err as Error).message };
  } finally {
    await c.client.unbind().catch(() => {});
  }
}
