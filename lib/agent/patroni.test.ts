import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { patroniFor, readPatroniConfig } from './patroni';

const dir = mkdtempSync(path.join(os.tmpdir(), 'pgherd-agent-patroni-'));
const file = (name: string, text: string) => {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
};

describe("the agent's reading of a Patroni configuration", () => {
  it('takes the scope, the REST address (https with a certificate) and the data directory from YAML', () => {
    const f = file(
      'a.yml',
      [
        'scope: orders',
        'name: db-1',
        'restapi:',
        '  listen: 0.0.0.0:8008',
        '  connect_address: 10.0.0.5:8008',
        '  certfile: /etc/ssl/rest.pem',
        'postgresql:',
        '  listen: 0.0.0.0:5433',
        '  data_dir: /var/lib/postgresql/15/main/',
        '',
      ].join('\n'),
    );
    expect(readPatroniConfig(f, 'db-1.example.com')).toEqual({
      configFile: f,
      scope: 'orders',
      restUrl: 'https://10.0.0.5:8008',
      dataDirectory: '/var/lib/postgresql/15/main',
      port: 5433,
    });
  });

  it("uses the host's name when Patroni listens on every address and says nothing else; http without a certificate", () => {
    const f = file('b.yml', 'scope: billing\nrestapi:\n  listen: "*:8009"\npostgresql:\n  listen: "*:5432"\n');
    expect(readPatroniConfig(f, 'db-2.example.com')).toMatchObject({
      restUrl: 'http://db-2.example.com:8009',
      dataDirectory: null,
      port: 5432,
    });
  });

  it('ignores what is not a Patroni configuration, and an address pgherd would not store', () => {
    expect(readPatroniConfig(file('c.yml', 'name: x\n'), 'h')).toBeNull();
    expect(readPatroniConfig(file('d.yml', ': not yaml: [\n'), 'h')).toBeNull();
    expect(readPatroniConfig(path.join(dir, 'missing.yml'), 'h')).toBeNull();
    expect(readPatroniConfig(file('e.yml', 'scope: s\nrestapi:\n  connect_address: "evil host/x:8008"\n'), 'h')).toBeNull();
  });

  it('matches an instance by its data directory, else by its port', () => {
    const a = { configFile: 'a', scope: 's', restUrl: 'https://a:8008', dataDirectory: '/data/a', port: 5432 };
    const b = { configFile: 'b', scope: 's', restUrl: 'https://b:8008', dataDirectory: null, port: 5433 };
    expect(patroniFor([a, b], { dataDirectory: '/data/a/', port: 9999 })).toBe(a);
    expect(patroniFor([a, b], { dataDirectory: '/data/x', port: 5433 })).toBe(b);
    expect(patroniFor([a, b], { dataDirectory: '/data/x', port: 5432 })).toBeNull();
  });
});
