// The lab's whole PostgreSQL 17: Debian 13's own packages (postgresql-17 and postgresql-client-17, with
// pg_upgrade, pg_basebackup, pg_dump and psql), for what npm's builds cannot do (they ship postgres,
// initdb and pg_ctl only): an in-place pg_upgrade from Debian 12's 15, and replicas of a green herd.
// Debian 12 packages no 17, and Debian 13's binaries need its newer C library, so the packages and every
// library they need (Debian 13's libc among them) are unpacked under PGHERD_LAB_BUILDS_DIR/debian/17 and
// each program is pointed at that C library's loader and those libraries (patchelf): the programs run
// as Debian built them, beside the system's own. Trusted as apt trusts them: the InRelease file checked
// against Debian's archive keys (gpgv), the package index against its SHA-256 there, each package
// against the index. Installed once per machine (`lib/setup/bootstrap.sh` runs this), version: the
// newest 17 of Debian 13 that day.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildsRoot, type LabBuild } from './builds';

const MIRROR = 'http://deb.debian.org/debian';
const SUITE = 'trixie';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
export const DEBIAN_BUILD_DIR = 'debian/17';
/** What the lab needs of Debian 13, the rest following from their Depends. */
const WANTED = ['postgresql-17', 'postgresql-client-17'];
/** Depends the programs never load here (maintainer scripts, data, JIT, Perl), left out. */
const NOT_NEEDED = new Set([
  'debconf',
  'debconf-2.0',
  'locales',
  'locales-all',
  'postgresql-common',
  'postgresql-client-common',
  'postgresql-common-dev',
  'ssl-cert',
  'tzdata',
  'sensible-utils',
  'perl',
  'libperl5.40',
  'libllvm19',
  'libc-bin',
  'base-files',
  'libpam-modules',
  'libpam-runtime',
  'libpam-modules-bin',
  'readline-common',
]);

interface Stanza {
  Package: string;
  Version: string;
  Filename: string;
  SHA256: string;
  Depends?: string;
  'Pre-Depends'?: string;
  Provides?: string;
}

async function get(url: string): Promise<Buffer> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${String(res.status)}`);
  return Buffer.from(await res.arrayBuffer());
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The suite's package index, each step checked as apt checks it. */
async function packageIndex(): Promise<Map<string, Stanza>> {
  const inRelease = await get(`${MIRROR}/dists/${SUITE}/InRelease`);
  // gpgv exits non-zero unless a key of Debian's archive keyring signed it.
  execFileSync('gpgv', ['--keyring', KEYRING, '-'], { input: inRelease, stdio: ['pipe', 'ignore', 'pipe'] });
  const index = 'main/binary-amd64/Packages.xz';
  const line = inRelease
    .toString()
    .split('SHA256:')[1]
    ?.split('\n')
    .find((l) => l.trim().endsWith(` ${index}`));
  const want = line?.trim().split(/\s+/)[0];
  if (!want) throw new Error(`InRelease of ${SUITE} names no ${index}`);
  const xz = await get(`${MIRROR}/dists/${SUITE}/${index}`);
  if (sha256(xz) !== want) throw new Error(`${index}: its SHA-256 is not the one InRelease gives`);
  const text = execFileSync('xz', ['-dc'], { input: xz, maxBuffer: 512 << 20 }).toString();
  const out = new Map<string, Stanza>();
  for (const block of text.split('\n\n')) {
    const s: Record<string, string> = {};
    for (const l of block.split('\n')) {
      const m = /^([\w-]+): (.*)$/.exec(l);
      if (m?.[1] && m[2] !== undefined) s[m[1]] = m[2];
    }
    if (s.Package && !out.has(s.Package)) out.set(s.Package, s as unknown as Stanza);
  }
  return out;
}

/** `WANTED` and what they depend on, each package once (an alternative: its first). */
function closure(index: Map<string, Stanza>): Stanza[] {
  const provided = new Map<string, string>();
  for (const s of index.values())
    for (const p of (s.Provides ?? '').split(',')) {
      const name = p.trim().split(' ')[0];
      if (name && !provided.has(name)) provided.set(name, s.Package);
    }
  const seen = new Map<string, Stanza>();
  const todo = [...WANTED];
  for (let name = todo.pop(); name !== undefined; name = todo.pop()) {
    if (NOT_NEEDED.has(name)) continue;
    const s = index.get(name) ?? index.get(provided.get(name) ?? '');
    if (!s) throw new Error(`Debian ${SUITE} has no package ${name}`);
    if (seen.has(s.Package) || NOT_NEEDED.has(s.Package)) continue;
    seen.set(s.Package, s);
    for (const dep of `${s.Depends ?? ''},${s['Pre-Depends'] ?? ''}`.split(',')) {
      const first = dep.split('|')[0]?.trim().split(/[\s:]/)[0];
      if (first) todo.push(first);
    }
  }
  return [...seen.values()];
}

const isElf = (file: string) => {
  try {
    return (
      statSync(file).isFile() &&
      readFileSync(file)
        .subarray(0, 4)
        .equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))
    );
  } catch {
    return false;
  }
};

/** Installs the build when missing; its directory. */
export async function installDebianBuild(log: (line: string) => void = console.log): Promise<string> {
  const home = path.join(buildsRoot(), DEBIAN_BUILD_DIR);
  if (existsSync(path.join(home, '.installed'))) return home;
  const index = await packageIndex();
  const packages = closure(index);
  const pg = packages.find((p) => p.Package === 'postgresql-17');
  log(`lab: installing Debian ${SUITE}'s PostgreSQL ${pg?.Version ?? '?'} (${String(packages.length)} packages) under ${home}`);
  const tmp = `${home}.${String(process.pid)}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true, mode: 0o755 });
  for (const p of packages) {
    const deb = await get(`${MIRROR}/${p.Filename}`);
    if (sha256(deb) !== p.SHA256) throw new Error(`${p.Filename}: its SHA-256 is not the one the index gives`);
    const file = path.join(tmp, path.basename(p.Filename));
    writeFileSync(file, deb);
    execFileSync('dpkg-deb', ['-x', file, tmp]);
    rmSync(file);
  }
  const libs = path.join(home, 'usr/lib/x86_64-linux-gnu');
  const pgLib = path.join(home, 'usr/lib/postgresql/17/lib');
  // Each program runs with Debian 13's loader and finds its libraries (and theirs: DT_RPATH) there, by
  // the path the build will have once in place.
  const bin = path.join(tmp, 'usr/lib/postgresql/17/bin');
  for (const f of readdirSync(bin).map((n) => path.join(bin, n)))
    if (isElf(f))
      execFileSync('patchelf', [
        '--set-interpreter',
        path.join(libs, 'ld-linux-x86-64.so.2'),
        '--force-rpath',
        '--set-rpath',
        `${libs}:${pgLib}`,
        f,
      ]);
  symlinkSync('usr/lib/postgresql/17/bin', path.join(tmp, 'bin'));
  // The loader's path is the build's final one: its programs run only once it is in place, and the build
  // counts as installed once its postgres has said its version there.
  if (existsSync(home) && !existsSync(path.join(home, '.installed'))) rmSync(home, { recursive: true, force: true });
  try {
    renameSync(tmp, home);
  } catch (err) {
    if (!existsSync(path.join(home, '.installed'))) throw err;
    rmSync(tmp, { recursive: true, force: true });
    return home;
  }
  const said = execFileSync(path.join(home, 'bin', 'postgres'), ['-V'])
    .toString()
    .trim();
  const m = /\(PostgreSQL\) (\d+)\.(\d+)/.exec(said);
  if (!m) throw new Error(`the installed build says ${said}`);
  writeFileSync(path.join(home, '.installed'), `${m[1] ?? ''}.${m[2] ?? ''}\n`);
  log(`lab: ${said}`);
  return home;
}

/** The installed build (bootstrap installs it); throws, saying how to install it, when missing. */
export function debianBuild(): LabBuild {
  const home = path.join(buildsRoot(), DEBIAN_BUILD_DIR);
  const stamp = path.join(home, '.installed');
  if (!existsSync(stamp))
    throw new Error(
      `the lab's Debian PostgreSQL 17 is not installed under ${home}: run lib/setup/bootstrap.sh (or node --import tsx lib/lab/debian-build.ts)`,
    );
  const version = readFileSync(stamp, 'utf8').trim();
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return { version, versionNum: major * 10000 + minor, binDir: path.join(home, 'bin') };
}

if (process.argv[1]?.endsWith('debian-build.ts')) {
  installDebianBuild().catch((err: unknown) => {
    console.error(`lab: Debian's PostgreSQL 17 could not be installed: ${(err as Error).message}`);
    process.exit(1);
  });
}
