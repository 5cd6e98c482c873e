// How a herd's members are started and stopped: argument lists for each control driver.
// The argv is quoted by the SSH layer; nothing here builds a shell string.
import { Refusal } from '@/lib/fleet/refusal';
import { setting } from '@/lib/settings/settings';

export interface ControlTarget {
  pgVersion: number;
  dataDirectory: string;
  /** The build's bin directory it runs from; '' or absent: the template's for its major. */
  binDir?: string;
}

export interface ControlDriver {
  start(t: ControlTarget): string[];
  stop(t: ControlTarget, mode: 'fast' | 'immediate'): string[];
  restart(t: ControlTarget): string[];
  reload(t: ControlTarget): string[];
  promote(t: ControlTarget): string[];
  /** Whether the postmaster runs, answering or not: exit 0 running, 3 not running (pg_ctl's codes). */
  status(t: ControlTarget): string[];
  /**
   * The stop a fence sends: sent only when the postmaster would act on it now, else nothing is sent and
   * it exits STOP_NOT_SENT saying why (see signalGuard). A stop is confirmed or not sent: one that
   * waits in a frozen postmaster acts whenever it is resumed, long after pgherd refused the failover
   * because it could not prove the fence, and leaves the herd with no primary.
   */
  fenceStop(t: ControlTarget, mode: 'fast' | 'immediate'): string[];
  /**
   * Keeps whatever starts the service on its own (at boot, or again after it stopped) from starting it:
   * its argv and the stdin it reads, or null when nothing but pgherd would start it.
   */
  keepStopped(t: ControlTarget): { argv: string[]; stdin: string; says: string } | null;
  /** Set where the tool runs clusters its OS packages laid out (their build, their folders): what it is, in words. */
  packaged?: string;
}

/** pg_ctl status's exit code for "no server running" (pg_ctlcluster passes it through). */
export const STATUS_NOT_RUNNING = 3;

/** A herd whose control driver pgherd cannot run yet: refused, nothing is run. */
export class UnsupportedDriverError extends Refusal {
  constructor(readonly driver: string) {
    super('not-applicable', `control driver ${driver} is not supported yet (pg_ctl and pg_ctlcluster are)`);
    this.name = 'UnsupportedDriverError';
  }
}

/** How long pg_ctl waits for a start or a stop (-t). */
const WAIT_SECONDS = 120;
const WAIT = ['-w', '-t', String(WAIT_SECONDS)];

/** A fence stop's exit code when it sent nothing: a signal would wait in the postmaster (or the host cannot tell). */
export const STOP_NOT_SENT = 75;

// Run as `sh -c GUARD pgherd-fence DATA_DIRECTORY [COMMAND...]`. Reads the postmaster's PID from
// postmaster.pid (where pg_ctl reads it) and its state from /proc/PID/stat (the field after the
// command name, which may itself hold spaces and parentheses: everything up to the last ") " goes).
// Stopped (T: SIGSTOP, a terminal), traced (t: a debugger) or in uninterruptible sleep (D: the kernel,
// usually I/O; a D that lasts about a second, not the moment of one write), a process does not act on a
// signal: it waits in it, and acts when the process runs again. Then nothing is run: the state letter
// goes to stdout, a line to stderr, and the exit code is STOP_NOT_SENT. Otherwise COMMAND replaces the
// shell (exec): between the look and the signal there is only the exec and pg_ctl's own read of
// postmaster.pid. No postmaster.pid, or no such process: the command runs and says so itself. Without
// COMMAND it only looks (exit 0: a signal would be acted on now).
const GUARD = [
  'd=$1; shift',
  'go() { if [ "$#" -gt 0 ]; then exec "$@"; fi; exit 0; }',
  'pid=$(head -n 1 "$d/postmaster.pid" 2>/dev/null) || go "$@"',
  'case $pid in ""|*[!0-9]*) go "$@" ;; esac',
  `[ -r /proc/self/stat ] || { echo "no /proc on this host: cannot tell whether postmaster $pid would act on a signal; nothing sent" >&2; echo "?"; exit ${STOP_NOT_SENT}; }`,
  // The cgroup v2 freezer (systemctl freeze, docker pause) leaves the process in S as /proc shows it:
  // its cgroup, or one above it, says so in cgroup.freeze (the v2 hierarchy wherever it is mounted).
  'cgv2=$(awk \'{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }\' /proc/self/mountinfo 2>/dev/null)',
  'cg=$(sed -n "s/^0:://p" "/proc/$pid/cgroup" 2>/dev/null)',
  'if [ -n "$cgv2" ] && [ -n "$cg" ]; then',
  '  p=$cg',
  '  while :; do',
  '    if [ "$(cat "$cgv2${p%/}/cgroup.freeze" 2>/dev/null)" = 1 ]; then',
  '      echo "postmaster $pid is in a frozen cgroup ($p): a signal would wait in it; nothing sent" >&2; echo F; exit ' +
    String(STOP_NOT_SENT),
  '    fi',
  '    [ -z "$p" ] || [ "$p" = / ] && break',
  '    p=${p%/*}',
  '  done',
  'fi',
  'n=0',
  'while :; do',
  '  st=$(cat "/proc/$pid/stat" 2>/dev/null) || go "$@"',
  '  st=${st##*) }; st=${st%% *}',
  '  case $st in',
  '    T|t) break ;;',
  '    D) n=$((n + 1)); [ "$n" -ge 5 ] && break; sleep 0.2 2>/dev/null || sleep 1 ;;',
  '    *) go "$@" ;;',
  '  esac',
  'done',
  `echo "postmaster $pid is in state $st: a signal would wait in it; nothing sent" >&2; echo "$st"; exit ${STOP_NOT_SENT}`,
].join('\n');

// Run as `sh -c STOPPED pgherd-stop DATA_DIRECTORY SECONDS COMMAND...`: runs COMMAND (a stop sent
// without waiting; its exit code and words are the stop's when it fails), then waits for
// DATA_DIRECTORY/postmaster.pid to go, looking every 10 ms (every second where sleep takes no fraction),
// for at most SECONDS, as pg_ctl -w -t SECONDS would, and says what pg_ctl says.
const STOPPED = [
  'd=$1; s=$2; shift 2',
  '"$@" || exit $?',
  'step=0.01; max=$((s * 100)); n=0',
  'while [ -e "$d/postmaster.pid" ]; do',
  '  n=$((n + 1))',
  '  if [ "$n" -gt "$max" ]; then echo "pg_ctl: server does not shut down" >&2; exit 1; fi',
  '  sleep "$step" 2>/dev/null || { step=1; max=$s; n=1; sleep 1; }',
  'done',
  'echo "server stopped"',
].join('\n');

/** `stop` (sent without waiting), then a wait of at most 120 s for the postmaster to be gone, looking every 10 ms. */
export const stoppedWithin = (dataDirectory: string, stop: string[]): string[] => [
  'sh',
  '-c',
  STOPPED,
  'pgherd-stop',
  dataDirectory,
  String(WAIT_SECONDS),
  ...stop,
];

/** `command` behind the guard: run only when the postmaster of `dataDirectory` would act on a signal now. */
export const guarded = (dataDirectory: string, command: string[]): string[] => [
  'sh',
  '-c',
  GUARD,
  'pgherd-fence',
  dataDirectory,
  ...command,
];

/** Only the guard's look: exit 0, or STOP_NOT_SENT with the state letter on stdout. */
export const postmasterHeld = (t: ControlTarget): string[] => guarded(t.dataDirectory, []);

/**
 * Why a fence stop sent nothing, in words ("its postmaster is stopped (SIGSTOP)"), from its result;
 * null when it ran (or failed) otherwise.
 */
export function notSentBecause(r: { code: number | null; stdout: string }): string | null {
  if (r.code !== STOP_NOT_SENT) return null;
  const st = r.stdout.trim().split('\n').pop() ?? '';
  if (st === 'T') return 'its postmaster is stopped (SIGSTOP)';
  if (st === 't') return 'its postmaster is stopped by a debugger (traced)';
  if (st === 'D') return 'its postmaster is in uninterruptible sleep (D: held by the kernel, usually on I/O)';
  if (st === 'F') return "its postmaster's cgroup is frozen (the cgroup freezer: systemctl freeze, docker pause)";
  return 'its host has no /proc to tell whether its postmaster would act on a stop';
}

/** Debian puts no pg_ctl in PATH: call it by the version's bin directory. */
export function binDir(pgVersion: number): string {
  return setting('PGHERD_PG_BIN_TEMPLATE').replace('{version}', String(pgVersion));
}

/**
 * A program of the build `t` runs from (its bin directory), where that build has it, else its major's own
 * (PGHERD_PG_BIN_TEMPLATE): a build may ship the server alone, as npm's do. As an argv, `args` after it.
 */
export function buildTool(t: ControlTarget, tool: string, ...args: string[]): string[] {
  const major = `${binDir(t.pgVersion)}/${tool}`;
  if (!t.binDir || t.binDir === binDir(t.pgVersion)) return [major, ...args];
  return [
    'sh',
    '-c',
    'if [ -x "$1" ]; then p=$1; else p=$2; fi; shift 2; exec "$p" "$@"',
    'pgherd-tool',
    `${t.binDir}/${tool}`,
    major,
    ...args,
  ];
}

/** The bin directory a member runs from: its own build when the inventory names one, else its major's. */
export const binsOf = (t: ControlTarget): string => t.binDir || binDir(t.pgVersion);

export const pgCtl: ControlDriver = {
  // -l: the postmaster's output goes to a file, not to the SSH channel (which would then never close).
  start: (t) => [`${binsOf(t)}/pg_ctl`, '-D', t.dataDirectory, '-l', `${t.dataDirectory}/pg_ctl.log`, ...WAIT, 'start'],
  stop: (t, mode) => [`${binsOf(t)}/pg_ctl`, '-D', t.dataDirectory, '-m', mode, ...WAIT, 'stop'],
  restart: (t) => [`${binsOf(t)}/pg_ctl`, '-D', t.dataDirectory, '-l', `${t.dataDirectory}/pg_ctl.log`, '-m', 'fast', ...WAIT, 'restart'],
  reload: (t) => [`${binsOf(t)}/pg_ctl`, '-D', t.dataDirectory, 'reload'],
  promote: (t) => [`${binsOf(t)}/pg_ctl`, '-D', t.dataDirectory, ...WAIT, 'promote'],
  status: (t) => [`${binsOf(t)}/pg_ctl`, '-D', t.dataDirectory, 'status'],
  // pg_ctl stop reads the PID from postmaster.pid and kill()s it (immediate: SIGQUIT, fast: SIGINT): the
  // guard reads the same file. pg_ctl's own wait (-w) looks for the file to go every 100 ms, about 50 ms
  // of every switchover's pause: sent with -W, the file is looked for every 10 ms (stoppedWithin), for
  // as long as -t gave.
  fenceStop: (t, mode) =>
    guarded(t.dataDirectory, stoppedWithin(t.dataDirectory, [`${binsOf(t)}/pg_ctl`, '-D', t.dataDirectory, '-m', mode, '-W', 'stop'])),
  // pg_ctl has no supervisor: a stopped postmaster stays stopped until someone runs pg_ctl start.
  keepStopped: () => null,
};

/** Debian's cluster name is the last part of /var/lib/postgresql/<version>/<name>. */
export function debianCluster(dataDirectory: string): string {
  const name = dataDirectory.replace(/\/+$/, '').split('/').pop();
  if (!name) throw new Error(`cannot tell the Debian cluster name from ${JSON.stringify(dataDirectory)}`);
  return name;
}

export const pgCtlcluster: ControlDriver = {
  start: (t) => ['pg_ctlcluster', String(t.pgVersion), debianCluster(t.dataDirectory), 'start'],
  stop: (t, mode) => ['pg_ctlcluster', String(t.pgVersion), debianCluster(t.dataDirectory), 'stop', '-m', mode],
  restart: (t) => ['pg_ctlcluster', String(t.pgVersion), debianCluster(t.dataDirectory), 'restart', '-m', 'fast'],
  reload: (t) => ['pg_ctlcluster', String(t.pgVersion), debianCluster(t.dataDirectory), 'reload'],
  promote: (t) => ['pg_ctlcluster', String(t.pgVersion), debianCluster(t.dataDirectory), 'promote'],
  status: (t) => ['pg_ctlcluster', String(t.pgVersion), debianCluster(t.dataDirectory), 'status'],
  // pg_ctlcluster stop runs pg_ctl stop (the same kill() of postmaster.pid's PID); run as root where
  // systemd runs, it becomes `systemctl stop postgresql@<version>-<name>`, whose ExecStop is that same
  // pg_ctl stop, and whose TimeoutStopSec then ends in SIGKILL, which a stopped process does get: a
  // stop on systemd's clock, long after pgherd gave up. Behind the guard, nothing of it is sent to a
  // postmaster that would not act on it now. The cluster's data directory is the instance's (its name
  // is read from it), so the guard reads the postmaster.pid pg_ctl will.
  fenceStop: (t, mode) => guarded(t.dataDirectory, pgCtlcluster.stop(t, mode)),
  packaged: "pg_ctlcluster runs clusters Debian's packages laid out (their build, their folders)",
  // Debian's start.conf: "manual" keeps the postgresql@ units (at boot, and `systemctl start
  // postgresql`) from starting the cluster; pg_ctlcluster start by hand still does.
  keepStopped: (t) => {
    const conf = `/etc/postgresql/${t.pgVersion}/${debianCluster(t.dataDirectory)}/start.conf`;
    return { argv: ['tee', conf], stdin: 'manual\n', says: `write "manual" to ${conf}: no unit starts it at boot or with the others` };
  },
};

/**
 * A member whose control plane is not a command on its host (Patroni's REST API, the RDS API): pgherd
 * sends it no pg_ctl. Its herd's driver (`driverOf` in the actions) says what it does instead, and the
 * engine refuses an action its driver lacks before any step runs: reaching this is a bug, refused.
 */
export class NoHostControlError extends Refusal {
  constructor(readonly driver: string) {
    super('not-applicable', `${driver} runs this member: pgherd sends it no pg_ctl (its driver decides how it is started and stopped)`);
    this.name = 'NoHostControlError';
  }
}

/** Whether `postgres -D <its data directory>` reads the member's own configuration: pg_ctl's layout (not Debian's /etc/postgresql). */
export const confInDataDirectory = (controlDriver: string): boolean => controlDriver === 'pg_ctl';

/**
 * The control driver of a herd. `systemd` is not run yet: when it is, its fence stop goes behind the
 * same guard (`systemctl stop` queues a job in PID 1, KillSignal then SIGKILL after TimeoutStopSec:
 * to a stopped postmaster the first waits and the second lands whenever PID 1's clock says). Patroni's
 * and RDS's members are refused here (NoHostControlError).
 */
export function driverFor(name: string): ControlDriver {
  if (name === 'pg_ctl') return pgCtl;
  if (name === 'pg_ctlcluster') return pgCtlcluster;
  if (name === 'patroni' || name === 'rds') throw new NoHostControlError(name);
  throw new UnsupportedDriverError(name);
}
