// pgherd's systemd units (deploy/systemd/) as the lab runs them (`npm run demo -- --ha`): the command
// of ExecStart and ExecStartPre, the unit's Environment= and its EnvironmentFile, written by the lab
// per site as an install writes /etc/pgherd/pgherd.env. What the lab starts is what the units start,
// so a unit that no longer starts pgherd fails the lab's tests.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from './lab';

export const UNITS_DIR = path.join(PROJECT_ROOT, 'deploy', 'systemd');
export type UnitName = 'pgherd-web.service' | 'pgherd-worker.service';

export interface Unit {
  /** ExecStart as argv, the unit's /usr/bin/node being this Node. */
  start: string[];
  /** Each ExecStartPre, in order. */
  pre: string[][];
  /** The unit's own Environment= assignments. */
  environment: Record<string, string>;
}

const argv = (line: string) =>
  line
    .trim()
    .split(/\s+/)
    .map((w, i) => (i === 0 && w === '/usr/bin/node' ? process.execPath : w));

export function readUnit(name: UnitName): Unit {
  const unit: Unit = { start: [], pre: [], environment: {} };
  for (const raw of readFileSync(path.join(UNITS_DIR, name), 'utf8').split('\n')) {
    const line = raw.trim();
    const eq = line.indexOf('=');
    if (line.startsWith('#') || eq < 0) continue;
    const [key, value] = [line.slice(0, eq), line.slice(eq + 1)];
    if (key === 'ExecStart') unit.start = argv(value);
    else if (key === 'ExecStartPre') unit.pre.push(argv(value));
    else if (key === 'Environment')
      for (const pair of value.trim().split(/\s+/)) {
        const at = pair.indexOf('=');
        if (at > 0) unit.environment[pair.slice(0, at)] = pair.slice(at + 1);
      }
  }
  if (!unit.start.length) throw new Error(`${name} has no ExecStart`);
  return unit;
}

/**
 * Writes an EnvironmentFile systemd reads as given: a value with a space, a quote, a backslash or a `#`
 * is single-quoted (systemd strips the quotes and reads what is inside as it is: a JSON setting keeps
 * its double quotes). A value that cannot be written so (a newline, a single quote) is refused.
 */
export function writeEnvFile(file: string, vars: Record<string, string>): void {
  const lines = Object.entries(vars).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`${k}: not a variable name`);
    if (/[\n\r']/.test(v)) throw new Error(`${k}: a newline or a single quote cannot be written to an environment file`);
    return `${k}=${/[\s"\\#$`]/.test(v) ? `'${v}'` : v}`;
  });
  writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** Reads an EnvironmentFile as systemd does for the lines writeEnvFile writes (and comments, blank lines, double quotes). */
export function readEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`${file}: not KEY=VALUE: ${line}`);
    let v = line.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) v = v.slice(1, -1);
    else if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1).replace(/\\(["\\])/g, '$1');
    out[line.slice(0, eq).trim()] = v;
  }
  return out;
}

/** The environment a unit's process gets: the system's few variables, the unit's Environment=, its file. */
export function unitEnv(unit: Unit, envFile: string): NodeJS.ProcessEnv {
  const base: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR']) {
    const v = process.env[k];
    if (v !== undefined) base[k] = v;
  }
  return { ...base, ...unit.environment, ...readEnvFile(envFile) } as NodeJS.ProcessEnv;
}
