// How a herd's members are started and stopped: argument lists for each control driver.
// The argv is quoted by the SSH layer; nothing here builds a shell string.
import { Refusal } from './refusal';

export interface ControlTarget {
  pgVersion: number;
  dataDirectory: string;
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
   * Keeps whatever starts the service on its own (at boot, or again after it stopped) from starting it:
   * its argv and the stdin it reads, or null when nothing but pgherd would start it.
   */
  keepStopped(t: ControlTarget): { argv: string[]; stdin: string; says: string } | null;
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

const WAIT = ['-w', '-t', '120'];

/** Debian puts no pg_ctl in PATH: call it by the version's bin directory. */
export function binDir(pgVersion: number): string {
  return (process.env.PGHERD_PG_BIN_TEMPLATE ?? '/usr/lib/postgresql/{version}/bin').replace('{version}', String(pgVersion));
}

export const pgCtl: ControlDriver = {
  // -l: the postmaster's output goes to a file, not to the SSH channel (which would then never close).
  start: (t) => [`${binDir(t.pgVersion)}/pg_ctl`, '-D', t.dataDirectory, '-l', `${t.dataDirectory}/pg_ctl.log`, ...WAIT, 'start'],
  stop: (t, mode) => [`${binDir(t.pgVersion)}/pg_ctl`, '-D', t.dataDirectory, '-m', mode, ...WAIT, 'stop'],
  restart: (t) => [
    `${binDir(t.pgVersion)}/pg_ctl`,
    '-D',
    t.dataDirectory,
    '-l',
    `${t.dataDirectory}/pg_ctl.log`,
    '-m',
    'fast',
    ...WAIT,
    'restart',
  ],
  reload: (t) => [`${binDir(t.pgVersion)}/pg_ctl`, '-D', t.dataDirectory, 'reload'],
  promote: (t) => [`${binDir(t.pgVersion)}/pg_ctl`, '-D', t.dataDirectory, ...WAIT, 'promote'],
  status: (t) => [`${binDir(t.pgVersion)}/pg_ctl`, '-D', t.dataDirectory, 'status'],
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
  // Debian's start.conf: "manual" keeps the postgresql@ units (at boot, and `systemctl start
  // postgresql`) from starting the cluster; pg_ctlcluster start by hand still does.
  keepStopped: (t) => {
    const conf = `/etc/postgresql/${t.pgVersion}/${debianCluster(t.dataDirectory)}/start.conf`;
    return { argv: ['tee', conf], stdin: 'manual\n', says: `write "manual" to ${conf}: no unit starts it at boot or with the others` };
  },
};

/**
 * A herd Patroni runs: pgherd never starts, stops, restarts or promotes its members behind Patroni's
 * back (Patroni would start again what pgherd stopped, demote what it promoted, and might fail over
 * while pgherd moves DNS). Refused with the reason; what Patroni allows goes through its REST API.
 */
export class PatroniOwnsError extends Refusal {
  constructor() {
    super(
      'not-applicable',
      "Patroni runs this herd: pgherd does not run pg_ctl behind Patroni's back (Patroni would undo it); its members are started, stopped and promoted by Patroni",
    );
    this.name = 'PatroniOwnsError';
  }
}

export function driverFor(name: string): ControlDriver {
  if (name === 'pg_ctl') return pgCtl;
  if (name === 'pg_ctlcluster') return pgCtlcluster;
  if (name === 'patroni') throw new PatroniOwnsError();
  throw new UnsupportedDriverError(name);
}
