// The units as the lab reads them, and environment files as systemd would read what the lab writes.
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readEnvFile, readUnit, writeEnvFile } from './units';

const tmp = () => path.join(mkdtempSync(path.join(os.tmpdir(), 'pgherd-units-')), 'pgherd.env');

describe('the systemd units', () => {
  it("read as the lab starts them: this Node for /usr/bin/node, the web's migration first, their Environment=", () => {
    const web = readUnit('pgherd-web.service');
    expect(web.start).toEqual([process.execPath, '--import', 'tsx', 'lib/entry/web/server.ts']);
    expect(web.pre).toEqual([[process.execPath, '--import', 'tsx', 'lib/entry/cli/migrate.ts']]);
    expect(web.environment).toEqual({ NODE_ENV: 'production', NEXT_TELEMETRY_DISABLED: '1' });
    expect(readUnit('pgherd-worker.service').start).toEqual([process.execPath, '--import', 'tsx', 'jobs/worker.ts']);
  });
});

describe('an environment file', () => {
  it('keeps every value as given, JSON with its quotes and paths with spaces single-quoted, mode 0600', () => {
    const file = tmp();
    const vars = {
      DATABASE_URL: 'postgres://pgherd@127.0.0.1:5000/pgherd',
      PGHERD_SSH_KEYS: '{"production":"/etc/pgherd/prod key"}',
      EMPTY: '',
      PRICE: 'a$b`c\\d#e',
    };
    writeEnvFile(file, vars);
    expect(readEnvFile(file)).toEqual(vars);
    expect(readFileSync(file, 'utf8')).toContain(`PGHERD_SSH_KEYS='{"production":"/etc/pgherd/prod key"}'`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('refuses what systemd could not read back: a newline, a single quote, a bad name', () => {
    expect(() => writeEnvFile(tmp(), { A: 'one\ntwo' })).toThrow(/newline or a single quote/);
    expect(() => writeEnvFile(tmp(), { A: "it's" })).toThrow(/newline or a single quote/);
    expect(() => writeEnvFile(tmp(), { 'A-B': 'x' })).toThrow(/not a variable name/);
  });
});
