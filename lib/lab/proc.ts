// Running lab daemons as an unprivileged OS user: Postgres and PgBouncer refuse root.
import { AsyncLocalStorage } from 'node:async_hooks';
import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { setting } from '@/lib/settings/settings';

const execFileP = promisify(execFile);

export const LAB_USER = setting('PGHERD_LAB_USER');
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

export interface Identity {
  user: string;
  uid: number;
  gid: number;
}

/** The OS identity lab daemons run as: a dedicated user when we are root, else ourselves. */
export function labIdentity(): Identity {
  if (!isRoot) {
    return { user: process.env.USER ?? 'me', uid: process.getuid!(), gid: process.getgid!() };
  }
  // Two labs starting at once (the integration and the browser tests' in `npm test`) may both find no
  // user: the second useradd then fails (the user exists, or /etc/passwd is locked), and is not an error
  // once the user is there.
  for (let attempt = 1; spawnSync('id', ['-u', LAB_USER]).status !== 0; attempt++) {
    const made = spawnSync('useradd', ['--create-home', '--user-group', '--shell', '/bin/bash', LAB_USER]);
    if (made.status === 0) break;
    if (attempt >= 20) throw new Error(`useradd ${LAB_USER} failed: ${made.stderr.toString()}`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  }
  // The lab's sshd refuses a locked account ('!') even for key logins with UsePAM no: a usable password
  // field that matches no password ('*') lets the SSH tests log in with their key.
  spawnSync('usermod', ['-p', '*', LAB_USER]);
  const uid = Number(spawnSync('id', ['-u', LAB_USER]).stdout.toString().trim());
  const gid = Number(spawnSync('id', ['-g', LAB_USER]).stdout.toString().trim());
  return { user: LAB_USER, uid, gid };
}

/** The identity of this process: for files that pgherd itself, not the lab's daemons, must own. */
export function selfIdentity(): Identity {
  return { user: process.env.USER ?? 'self', uid: process.getuid!(), gid: process.getgid!() };
}

/** argv that runs `argv` as the lab identity, keeping the exec'd program's PID (setpriv does not fork). */
export function asLabUser(id: Identity, argv: string[]): string[] {
  if (!isRoot || id.uid === 0) return argv;
  return ['setpriv', `--reuid=${id.uid}`, `--regid=${id.gid}`, '--init-groups', '--reset-env', '--', ...argv];
}

export async function run(id: Identity, argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const [cmd, ...args] = asLabUser(id, argv);
  try {
    return await execFileP(cmd!, args, {
      env: { PATH: '/usr/bin:/bin', ...opts.env } as NodeJS.ProcessEnv,
      cwd: opts.cwd ?? '/',
      maxBuffer: 16 << 20,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${argv.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** True while pid runs. A zombie counts as gone: daemons are reparented to an init that may reap late. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** True when pid runs a program whose command line contains `expected` (guards against PID reuse). */
export function pidRuns(pid: number, expected: string): boolean {
  const f = `/proc/${pid}/cmdline`;
  if (!existsSync(f)) return false;
  try {
    return readFileSync(f, 'utf8').includes(expected);
  } catch {
    return false;
  }
}

/**
 * The fields of /proc/<pid>/stat after the command: state(0) ppid(1) pgrp(2) session(3) tty_nr(4) ...
 * utime(11) stime(12) cutime(13) cstime(14); null when the process is gone. `pid (comm) state ...`:
 * comm may hold spaces and parentheses, so the fields are read after the last ")".
 */
function statFields(pid: number | string): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Every process below pid (children, their children, ...), read from /proc. */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const f = statFields(d);
    if (f) parent.set(Number(d), Number(f[1]));
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent)
      if (pp === p) {
        out.push(c);
        walk(c);
      }
  };
  walk(pid);
  return out;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Send `signal`, wait for the process to go, SIGKILL after `graceMs`. */
export async function stopPid(pid: number, signal: NodeJS.Signals, graceMs = 15_000): Promise<void> {
  if (!alive(pid)) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    while (alive(pid)) await sleep(20);
  }
}

/** What a cancelled start throws at its next step: the steps before it, and what they started, stand. */
export class StartCancelled extends Error {
  constructor() {
    super('cancelled');
    this.name = 'StartCancelled';
  }
}

// A start (the lab's, the demo's) is a long chain of awaits through many modules. Rather than hand a
// signal down to each of them, the chain runs in a scope that every wait and every process the lab
// tracks consults: a start cancelled by Ctrl-C ends at its next step, with what it started recorded.
const cancelScope = new AsyncLocalStorage<AbortSignal>();

/** Runs `fn` so that, once `signal` aborts, its next wait (lib/testing/wait.ts) or tracked process throws StartCancelled. */
export function cancellable<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  return cancelScope.run(signal, fn);
}

/** Runs `fn` outside any cancellable scope: the cleanup of a cancelled start must not be cancelled itself. */
export function uncancellable<T>(fn: () => Promise<T>): Promise<T> {
  return cancelScope.exit(fn);
}

/** The signal of the cancellable scope this runs in, for a step that must stop something of its own when it fires. */
export function cancelSignal(): AbortSignal | undefined {
  return cancelScope.getStore();
}

/** Throws StartCancelled when the scope this runs in has been cancelled. */
export function throwIfCancelled(): void {
  if (cancelScope.getStore()?.aborted) throw new StartCancelled();
}

/** A process found by processesUnder: its PID and command line (arguments joined by spaces). */
export interface FoundProcess {
  pid: number;
  command: string;
  /** It has a controlling terminal: someone's shell or `tail -f`, not a daemon (daemons have none). */
  terminal: boolean;
}

/**
 * The live processes (this one aside) that run in `dir` or below it, or name a path under it on their
 * command line: what still uses a lab's directory, whoever started it.
 */
export function processesUnder(dir: string): FoundProcess[] {
  const root = dir.replace(/\/+$/, '');
  const inside = (p: string) => p === root || p.startsWith(`${root}/`);
  const found: FoundProcess[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    let args: string[];
    let cwd = '';
    try {
      args = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      continue; // gone meanwhile
    }
    try {
      cwd = readlinkSync(`/proc/${d}/cwd`);
    } catch {
      // another user's process, unreadable when we are not root: its command line still tells
    }
    // An argument may carry the path after a prefix (--config-file=/tmp/...): a match anywhere counts.
    const named = args.some((a) => a.includes(`${root}/`) || a.endsWith(root));
    const tty = Number(statFields(d)?.[4] ?? 0);
    if ((inside(cwd) || named) && alive(Number(d))) found.push({ pid: Number(d), command: args.join(' '), terminal: tty !== 0 });
  }
  return found;
}

/** mkdir -p, with every directory it creates owned by the lab identity. */
export function mkdirOwned(id: Identity, dir: string, mode = 0o700): void {
  if (existsSync(dir)) return;
  mkdirOwned(id, path.dirname(dir), 0o755);
  mkdirSync(dir, { mode });
  chownSync(dir, id.uid, id.gid);
}

/** CPU seconds (user + system) used so far by `pid`, its live descendants and the children it reaped. */
export function treeCpuSeconds(pid: number): number {
  const ticks = (p: number) => {
    const f = statFields(p);
    return f ? Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) : 0;
  };
  // Clock ticks: 100 a second on Linux (sysconf(_SC_CLK_TCK)).
  return [pid, ...descendants(pid)].reduce((sum, p) => sum + ticks(p), 0) / 100;
}
