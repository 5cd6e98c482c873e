import { describe, expect, it } from 'vitest';
import { shellCommand } from '@/lib/ssh/quote';
import { debianCluster, driverFor } from './drivers';

const t = { pgVersion: 15, dataDirectory: '/var/lib/postgresql/15/main' };

describe('control drivers', () => {
  it('pg_ctl: the version\u2019s binary, the data directory, a log file, waiting with a deadline', () => {
    expect(shellCommand(driverFor('pg_ctl').stop(t, 'fast'))).toBe(
      '/usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/postgresql/15/main -m fast -w -t 120 stop',
    );
    expect(driverFor('pg_ctl').start(t)).toContain('-l');
    expect(driverFor('pg_ctl').restart(t).slice(-1)).toEqual(['restart']);
    expect(shellCommand(driverFor('pg_ctl').status(t))).toBe('/usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/postgresql/15/main status');
  });

  it('keeps a supervisor from starting a fenced primary: start.conf "manual" for pg_ctlcluster; pg_ctl has none', () => {
    expect(driverFor('pg_ctl').keepStopped(t)).toBeNull();
    expect(driverFor('pg_ctlcluster').keepStopped(t)).toMatchObject({
      argv: ['tee', '/etc/postgresql/15/main/start.conf'],
      stdin: 'manual\n',
    });
  });

  it('pg_ctlcluster: version and cluster name', () => {
    expect(driverFor('pg_ctlcluster').stop(t, 'immediate')).toEqual(['pg_ctlcluster', '15', 'main', 'stop', '-m', 'immediate']);
    expect(driverFor('pg_ctlcluster').status(t)).toEqual(['pg_ctlcluster', '15', 'main', 'status']);
    expect(debianCluster('/var/lib/postgresql/16/reports/')).toBe('reports');
  });

  it('refuses drivers it cannot run yet, by name', () => {
    expect(() => driverFor('systemd')).toThrow(/systemd is not supported yet/);
    // Patroni's herds: never pg_ctl behind Patroni's back, and the refusal says why.
    expect(() => driverFor('patroni')).toThrow(/^refused: Patroni runs this herd: pgherd does not run pg_ctl behind Patroni's back/);
  });
});
