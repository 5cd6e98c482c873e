// The Postgres builds installed on this host: every bin directory the configured patterns name that
// holds a `postgres` and a `pg_ctl`, and the version its `postgres --version` says. A pattern may hold
// one `*` in a path component (Debian's /usr/lib/postgresql/*/bin, PGDG's /usr/pgsql-*/bin). Each is
// named by its real path, as the agent names the directory an instance's postmaster runs from.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface Build {
  binDir: string;
  /** 150018 for 15.18, as server_version_num would say it. */
  versionNum: number;
  /** What `postgres --version` printed, e.g. "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)". */
  versionText: string;
  /** The extensions it ships: name to default_version, from its share directory's control files. */
  extensions: Record<string, string>;
}

/**
 * Where a build's extensions are: beside it (a relocatable build); where Debian's layout puts them relative to
 * its bin directory (<prefix>/lib/postgresql/<major>/bin and <prefix>/share/postgresql/<major>, as the server
 * itself finds them, so a Debian build unpacked under another prefix is read right); or Debian's own.
 */
export function extensionDirs(binDir: string, major: number): string[] {
  return [
    path.join(binDir, '..', 'share', 'postgresql', 'extension'),
    path.join(binDir, '..', 'share', 'extension'),
    ...(path.basename(path.dirname(binDir)) === String(major) && path.basename(path.dirname(path.dirname(binDir))) === 'postgresql'
      ? [path.join(binDir, '..', '..', '..', '..', 'share', 'postgresql', String(major), 'extension')]
      : []),
    `/usr/share/postgresql/${String(major)}/extension`,
  ];
}

/** name -> default_version of the control files in the first of `dirs` that has any (at most 1,000). */
export function readExtensions(dirs: string[]): Record<string, string> {
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith('.control'));
    } catch {
      continue;
    }
    if (!names.length) continue;
    const out: Record<string, string> = {};
    for (const n of names.sort().slice(0, 1000)) {
      const name = n.slice(0, -'.control'.length);
      if (!/^[A-Za-z0-9_.-]{1,63}$/.test(name)) continue;
      try {
        const m = /^\s*default_version\s*=\s*'([^']{1,40})'/m.exec(readFileSync(path.join(dir, n), 'utf8'));
        out[name] = m?.[1] ?? '';
      } catch {
        // an unreadable control file is left out
      }
    }
    return out;
  }
  return {};
}

export const DEFAULT_BUILD_PATTERNS = ['/usr/lib/postgresql/*/bin', '/usr/pgsql-*/bin'];

/** "postgres (PostgreSQL) 15.18 (Debian ...)" to 150018; "9.6.24" to 90624; null when it says no version. */
export function versionNumOf(text: string): number | null {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text);
  if (!m) return null;
  const major = Number(m[1]);
  if (major >= 10) return major * 10000 + Number(m[2] ?? 0);
  return major * 10000 + Number(m[2] ?? 0) * 100 + Number(m[3] ?? 0);
}

/** The directories one pattern names, at most one `*` (in one path component). */
export function expandPattern(pattern: string): string[] {
  if (!path.isAbsolute(pattern)) return [];
  const parts = pattern.split('/');
  const k = parts.findIndex((p) => p.includes('*'));
  if (k < 0) return [pattern];
  const parent = parts.slice(0, k).join('/') || '/';
  const [before = '', after = ''] = (parts[k] as string).split('*', 2);
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith(before) && n.endsWith(after) && n.length >= before.length + after.length)
    .sort()
    .map((n) => [parent === '/' ? '' : parent, n, ...parts.slice(k + 1)].join('/'));
}

/** The builds the patterns find, each bin directory once (symbolic links resolved), at most 64. */
export async function discoverBuilds(patterns: string[]): Promise<Build[]> {
  const seen = new Set<string>();
  const out: Build[] = [];
  for (const pattern of patterns) {
    for (const dir of expandPattern(pattern)) {
      if (!existsSync(path.join(dir, 'postgres')) || !existsSync(path.join(dir, 'pg_ctl'))) continue;
      let real: string;
      try {
        real = realpathSync(dir);
      } catch {
        continue;
      }
      if (seen.has(real) || out.length >= 64) continue;
      seen.add(real);
      try {
        const { stdout } = await execFileP(path.join(dir, 'postgres'), ['--version'], { timeout: 10_000 });
        const versionText = stdout.trim().slice(0, 200);
        const versionNum = versionNumOf(versionText);
        if (versionNum !== null)
          out.push({
            binDir: real,
            versionNum,
            versionText,
            extensions: readExtensions(extensionDirs(real, Math.floor(versionNum / 10000))),
          });
      } catch (err) {
        process.stderr.write(`pgherd-agent: ${dir}/postgres --version: ${(err as Error).message}\n`);
      }
    }
  }
  return out;
}
