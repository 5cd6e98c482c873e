// The Grafana dashboard in deploy/ uses only metrics pgherd exports (a renamed metric would leave a
// panel silently empty).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import { registerFleetGauges } from './fleet';
import { metrics } from '@/lib/adapters/metrics/registry';

const ROOT = path.join(__dirname, '..', '..', '..');

describe('deploy/grafana/pgherd-dashboard.json', () => {
  it('queries only metrics the web process and the workers export', async () => {
    const fleet = new Registry();
    registerFleetGauges(
      fleet,
      (): Db => {
        throw new Error('no database here: only the metrics\u2019 names are read');
      },
      () => [],
    );
    const exported = new Set<string>();
    for (const m of [...(await metrics().registry.getMetricsAsJSON()), ...(await fleet.getMetricsAsJSON().catch(() => []))]) {
      exported.add(m.name);
      if ((m.type as unknown as string) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(m.name + s);
    }
    for (const name of fleet.getMetricsAsArray().map((m) => (m as unknown as { name: string }).name)) exported.add(name);
    const dash = JSON.parse(readFileSync(path.join(ROOT, 'deploy', 'grafana', 'pgherd-dashboard.json'), 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    expect(dash.panels.length).toBeGreaterThan(10);
    const used = dash.panels.flatMap((p) =>
      p.targets.flatMap((t) => [...t.expr.matchAll(/\b((?:pgherd|process|nodejs)_[a-z0-9_]+)/g)].map((m) => [p.title, m[1]!])),
    );
    expect(used.length).toBeGreaterThan(15);
    expect(used.filter(([, name]) => !exported.has(name!))).toEqual([]);
  });
});
