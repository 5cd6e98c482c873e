import { describe, expect, it } from 'vitest';
import { ingestResult, metrics, stepLabel } from '@/lib/adapters/metrics/registry';
import { setting } from '@/lib/settings/settings';
import { hasToken } from './serve';
import { logLine, withLogContext } from '@/lib/adapters/log/log';
import { Registry } from 'prom-client';
import { registerFleetGauges } from './fleet';

describe('step labels', () => {
  it('take the instance and PgBouncer names out, longest first', () => {
    const names = { instances: ['db-1:5432', 'db-10:5432'], poolers: ['bouncer-1'] };
    expect(stepLabel('re-point db-10:5432 to db-1:5432', names)).toBe('re-point {instance} to {instance}');
    expect(stepLabel('PgBouncer bouncer-1: pause', names)).toBe('PgBouncer {pgbouncer}: pause');
    expect(stepLabel('pg_ctl reload', names)).toBe('pg_ctl reload');
    expect(stepLabel('x'.repeat(500), names)).toHaveLength(120);
  });
});

describe('ingest results', () => {
  it('name what the status says', () => {
    expect([200, 202, 400, 401, 403, 413, 422, 429, 500, 503].map(ingestResult)).toEqual([
      'accepted',
      'accepted',
      'invalid',
      'refused',
      'refused',
      'invalid',
      'invalid',
      'unavailable',
      'error',
      'unavailable',
    ]);
  });
});

describe('the metrics token and listen address', () => {
  it('refuses a short token or one with spaces, and takes none as none', () => {
    const metricsToken = (env: Record<string, string>) => setting('PGHERD_METRICS_TOKEN', env);
    expect(metricsToken({})).toBeNull();
    expect(metricsToken({ PGHERD_METRICS_TOKEN: '' })).toBeNull();
    expect(() => metricsToken({ PGHERD_METRICS_TOKEN: 'short' })).toThrow(/at least 16/);
    expect(() => metricsToken({ PGHERD_METRICS_TOKEN: 'a'.repeat(10) + ' ' + 'b'.repeat(10) })).toThrow(/no spaces/);
    expect(metricsToken({ PGHERD_METRICS_TOKEN: 'a'.repeat(16) })).toBe('a'.repeat(16));
  });
  it('compares the bearer token, and only a bearer token', () => {
    const token = 'a'.repeat(32);
    expect(hasToken(`Bearer ${token}`, token)).toBe(true);
    expect(hasToken(`Bearer ${token}x`, token)).toBe(false);
    expect(hasToken(`Basic ${token}`, token)).toBe(false);
    expect(hasToken(undefined, token)).toBe(false);
    expect(hasToken(undefined, null)).toBe(true);
  });
  it('parses host:port, [v6]:port and a bare port; refuses the rest', () => {
    const listen = (v: string) => setting('PGHERD_METRICS_LISTEN', { PGHERD_METRICS_LISTEN: v });
    expect(listen('0.0.0.0:9464')).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(listen('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(listen('9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(listen('metrics.internal:0')).toEqual({ host: 'metrics.internal', port: 0 });
    expect(listen('')).toBeNull();
    for (const bad of [':9464', 'host:', 'host:70000', 'host:port', 'a b:1', 'http://x:1'])
      expect(() => listen(bad), bad).toThrow(/^PGHERD_METRICS_LISTEN must be host:port/);
  });
});

describe('the registry', () => {
  it('is one per process, whoever asks', () => {
    expect(metrics()).toBe(metrics());
  });
});

describe('log lines', () => {
  it('carry the context they are written in, nested contexts adding to the outer one, and none outside', async () => {
    const lines: string[] = [];
    const original = console.log;
    console.log = (l: string) => void lines.push(l);
    try {
      await withLogContext({ operationId: 1, targetId: 2 }, async (ctx) => {
        ctx.action = 'reload';
        await new Promise((r) => setTimeout(r, 1));
        await withLogContext({ step: 3, stepName: 'reload' }, async () => {
          await new Promise((r) => setTimeout(r, 1));
          logLine('step.end', { status: 'succeeded' });
        });
        logLine('target.end', {});
      });
      logLine('worker.ready', {});
    } finally {
      console.log = original;
    }
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map(({ at: _, ...rest }) => rest)).toEqual([
      { event: 'step.end', operationId: 1, targetId: 2, action: 'reload', step: 3, stepName: 'reload', status: 'succeeded' },
      { event: 'target.end', operationId: 1, targetId: 2, action: 'reload' },
      { event: 'worker.ready' },
    ]);
  });
});

describe("the fleet's gauges with a database that never answers", () => {
  it('leave the fleet out within the bound, say inventory_up 0, and claim no worker count', async () => {
    const registry = new Registry();
    const hung = { execute: () => new Promise(() => {}) } as unknown;
    registerFleetGauges(
      registry,
      () => hung as Parameters<typeof registerFleetGauges>[1] extends () => infer D ? D : never,
      () => [],
      { readBoundMs: 200 },
    );
    const started = Date.now();
    const text = await registry.metrics();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(text).toMatch(/^pgherd_inventory_up 0$/m);
    expect(text).not.toMatch(/^pgherd_workers\{/m);
    expect(text).not.toMatch(/^pgherd_instances\{/m);
  });
});
