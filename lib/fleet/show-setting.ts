// One setting as a member runs it now (current_setting over a short-lived connection).
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { instanceClient } from '@/lib/fleet/pg-access';

export async function showSetting(m: InstanceRef, name: string): Promise<string> {
  const c = instanceClient(m, { connectionTimeoutMillis: 3000, application_name: 'pgherd' });
  c.on('error', () => {});
  await c.connect();
  try {
    const r = await c.query<{ v: string }>('SELECT current_setting($1) AS v', [name]);
    return r.rows[0]?.v ?? '';
  } finally {
    await c.end().catch(() => {});
  }
}
