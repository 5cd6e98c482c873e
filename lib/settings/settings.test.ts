// The settings module: each kind refuses what it does not accept, naming the setting, the value and
// what it accepts; unset, empty and blank read as the default; checkSettings stops a process on a bad one.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { checkSettings, setting, SettingError, settingProblems, SETTINGS } from '@/lib/settings/settings';

describe('a whole-number setting', () => {
  it('reads its default when unset, empty or blank, and the number when given', () => {
    expect(setting('PGHERD_WORKER_CONCURRENCY', {})).toBe(8);
    expect(setting('PGHERD_WORKER_CONCURRENCY', { PGHERD_WORKER_CONCURRENCY: '' })).toBe(8);
    expect(setting('PGHERD_WORKER_CONCURRENCY', { PGHERD_WORKER_CONCURRENCY: '  ' })).toBe(8);
    expect(setting('PGHERD_WORKER_CONCURRENCY', { PGHERD_WORKER_CONCURRENCY: ' 16 ' })).toBe(16);
    expect(setting('PGHERD_REFRESH_INTERVAL_MS', { PGHERD_REFRESH_INTERVAL_MS: '0' })).toBe(0);
  });

  it('refuses a word, a fraction or an exponent, naming the setting, the value and the bounds', () => {
    for (const bad of ['eight', '8.5', '1e3', '0x10', '8 cores'])
      expect(() => setting('PGHERD_WORKER_CONCURRENCY', { PGHERD_WORKER_CONCURRENCY: bad }), bad).toThrow(
        `PGHERD_WORKER_CONCURRENCY must be a whole number from 1 to 256 (got ${JSON.stringify(bad)})`,
      );
  });

  it('refuses a value out of its bounds rather than clamping it or taking the default', () => {
    expect(() => setting('PGHERD_WORKER_CONCURRENCY', { PGHERD_WORKER_CONCURRENCY: '0' })).toThrow(/from 1 to 256 \(got "0"\)/);
    expect(() => setting('PGHERD_WORKER_CONCURRENCY', { PGHERD_WORKER_CONCURRENCY: '257' })).toThrow(/from 1 to 256 \(got "257"\)/);
    expect(() => setting('PGHERD_PATRONI_FOLLOW_MS', { PGHERD_PATRONI_FOLLOW_MS: '100' })).toThrow(SettingError);
  });

  it('API tokens live a year at most unless configured otherwise', () => {
    expect(setting('PGHERD_API_TOKEN_MAX_DAYS', {})).toBe(365);
    expect(setting('PGHERD_API_TOKEN_MAX_DAYS', { PGHERD_API_TOKEN_MAX_DAYS: '30' })).toBe(30);
  });
});

describe('the other kinds', () => {
  it('a number takes fractions within its bounds', () => {
    expect(setting('PGHERD_ROUTE53_POLL_SECONDS', { PGHERD_ROUTE53_POLL_SECONDS: '0.2' })).toBe(0.2);
    expect(() => setting('PGHERD_ROUTE53_POLL_SECONDS', { PGHERD_ROUTE53_POLL_SECONDS: '0.01' })).toThrow(
      'PGHERD_ROUTE53_POLL_SECONDS must be a number from 0.05 to 60 (got "0.01")',
    );
  });

  it('an enum takes one of its words only', () => {
    expect(setting('PGHERD_PRICE_SOURCE', {})).toBe('file');
    expect(setting('PGHERD_PRICE_SOURCE', { PGHERD_PRICE_SOURCE: 'aws' })).toBe('aws');
    expect(() => setting('PGHERD_PRICE_SOURCE', { PGHERD_PRICE_SOURCE: 'AWS!' })).toThrow(
      'PGHERD_PRICE_SOURCE must be "file" or "aws" (got "AWS!")',
    );
  });

  it('a flag is 1 or 0', () => {
    expect(setting('PGHERD_SKIP_BUILD', {})).toBe(false);
    expect(setting('PGHERD_SKIP_BUILD', { PGHERD_SKIP_BUILD: '1' })).toBe(true);
    expect(setting('PGHERD_SKIP_BUILD', { PGHERD_SKIP_BUILD: 'false' })).toBe(false);
    expect(() => setting('PGHERD_SKIP_BUILD', { PGHERD_SKIP_BUILD: 'yes please' })).toThrow(/^PGHERD_SKIP_BUILD must be 1 or 0/);
  });

  it('a list of networks is split on commas and spaces, each checked', () => {
    expect(setting('PGHERD_TRUSTED_PROXIES', {})).toEqual([]);
    expect(setting('PGHERD_TRUSTED_PROXIES', { PGHERD_TRUSTED_PROXIES: '10.0.0.0/8, 192.168.1.10 fd00::/8' })).toEqual([
      '10.0.0.0/8',
      '192.168.1.10',
      'fd00::/8',
    ]);
    expect(() => setting('PGHERD_WEBHOOK_ALLOW_NETWORKS', { PGHERD_WEBHOOK_ALLOW_NETWORKS: '10.0.0.0/33,example.org' })).toThrow(
      /^PGHERD_WEBHOOK_ALLOW_NETWORKS must be .*: "10\.0\.0\.0\/33" is not an address or a CIDR block; "example\.org" is not/,
    );
  });

  it('a URL is http or https; a path may be required absolute', () => {
    expect(setting('PGHERD_CONSOLE_URL', { PGHERD_CONSOLE_URL: 'https://pgherd.example.com' })).toBe('https://pgherd.example.com');
    expect(() => setting('PGHERD_CONSOLE_URL', { PGHERD_CONSOLE_URL: 'pgherd.example.com' })).toThrow(/must be an http or https URL/);
    expect(setting('PGHERD_HOOK_DIR', { PGHERD_HOOK_DIR: '/srv/hooks' })).toBe('/srv/hooks');
    expect(() => setting('PGHERD_HOOK_DIR', { PGHERD_HOOK_DIR: 'hooks' })).toThrow(
      'PGHERD_HOOK_DIR must be an absolute path (got "hooks")',
    );
  });

  it('a JSON value says which field is wrong, or that it is not JSON', () => {
    const env = (v: unknown) => ({ PGHERD_AWS_ENVIRONMENTS: typeof v === 'string' ? v : JSON.stringify(v) });
    expect(setting('PGHERD_AWS_ENVIRONMENTS', env([{ environment: 'prod', vpc: 'vpc-0a' }]))).toEqual([
      { environment: 'prod', vpc: 'vpc-0a', approve: false },
    ]);
    expect(() => setting('PGHERD_AWS_ENVIRONMENTS', env('['))).toThrow(/^PGHERD_AWS_ENVIRONMENTS must be .*: the value is not JSON/);
    expect(() => setting('PGHERD_AWS_ENVIRONMENTS', env([{ environment: 'x', account: '12' }]))).toThrow(
      /0\.account: a 12-digit AWS account id/,
    );
  });

  it('a secret is never shown, not even when refused', () => {
    const err = (() => {
      try {
        setting('PGHERD_METRICS_TOKEN', { PGHERD_METRICS_TOKEN: 'hunter2 hunter2' });
      } catch (e) {
        return e as Error;
      }
      return null;
    })();
    expect(err?.message).toBe(
      'PGHERD_METRICS_TOKEN must be at least 16 characters, with no spaces (openssl rand -hex 24 makes one) (got 15 characters, not shown)',
    );
  });

  it('a retired setting is refused whatever its value, saying why', () => {
    expect(setting('PGHERD_PG_PASSWORD', {})).toBeNull();
    expect(() => setting('PGHERD_PG_PASSWORD', { PGHERD_PG_PASSWORD: 'x' })).toThrow(/^PGHERD_PG_PASSWORD is not read any more: /);
  });
});

describe('reading from the process', () => {
  const saved = process.env.PGHERD_LEASE_TTL_MS;
  afterEach(() => {
    if (saved === undefined) delete process.env.PGHERD_LEASE_TTL_MS;
    else process.env.PGHERD_LEASE_TTL_MS = saved;
  });

  it('follows process.env as a test changes it between calls', () => {
    process.env.PGHERD_LEASE_TTL_MS = '2000';
    expect(setting('PGHERD_LEASE_TTL_MS')).toBe(2000);
    process.env.PGHERD_LEASE_TTL_MS = '8000';
    expect(setting('PGHERD_LEASE_TTL_MS')).toBe(8000);
    delete process.env.PGHERD_LEASE_TTL_MS;
    expect(setting('PGHERD_LEASE_TTL_MS')).toBe(45_000);
    process.env.PGHERD_LEASE_TTL_MS = 'soon';
    expect(() => setting('PGHERD_LEASE_TTL_MS')).toThrow(/PGHERD_LEASE_TTL_MS/);
  });
});

describe('checkSettings', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('lists every bad setting the environment sets, and nothing for a good one or an unset one', () => {
    expect(settingProblems({})).toEqual([]);
    expect(settingProblems({ PGHERD_WORKER_CONCURRENCY: '8', PGHERD_QUEUE_PREFIX: '', PGHERD_UNRELATED: 'x' })).toEqual([]);
    expect(settingProblems({ PGHERD_WORKER_CONCURRENCY: '0', PGHERD_PRICE_SOURCE: 'cheap' })).toEqual([
      'PGHERD_WORKER_CONCURRENCY must be a whole number from 1 to 256 (got "0")',
      'PGHERD_PRICE_SOURCE must be "file" or "aws" (got "cheap")',
    ]);
  });

  it('stops the process on a bad value, naming the setting, its value and what it accepts', () => {
    const said: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void said.push(String(args[0])));
    const exit = vi.spyOn(process, 'exit').mockImplementation(() => {
      throw new Error('exited');
    });
    expect(() => checkSettings('worker', { PGHERD_LAG_SAMPLE_MS: 'often' })).toThrow('exited');
    expect(exit).toHaveBeenCalledWith(2);
    expect(said[0]).toBe('worker: PGHERD_LAG_SAMPLE_MS must be a whole number from 0 to 86400000 (got "often")');
    expect(said.at(-1)).toMatch(/^worker: not started; docs\/configuration\.md/);
  });

  it('lets a process with good settings go on', () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation(() => {
      throw new Error('exited');
    });
    checkSettings('web', { PGHERD_DB_POOL: '20', PGHERD_METRICS_LISTEN: '127.0.0.1:0' });
    expect(exit).not.toHaveBeenCalled();
  });

  it('every default is a value its own setting accepts', () => {
    for (const [name, s] of Object.entries(SETTINGS)) {
      if (s.fallback === null || typeof s.fallback !== 'number') continue;
      expect(settingProblems({ [name]: String(s.fallback) }), name).toEqual([]);
    }
  });
});
