// The web process's queue handle while Redis is away: a line now and then, never an unhandled error.
import net from 'node:net';
import { afterAll, expect, it, vi } from 'vitest';
import { waitFor } from '@/lib/testing/wait';
import { webQueue } from './web-queue';

const saved = process.env.REDIS_URL;
afterAll(() => {
  process.env.REDIS_URL = saved;
});

it('logs Redis being away as throttled events, never BullMQ\u2019s unhandled-error stack traces', async () => {
  // A port that refuses connections: Redis is down.
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  process.env.REDIS_URL = `redis://127.0.0.1:${port}`;
  const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
  const logs = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    const q = webQueue()!;
    let failures = 0;
    q.on('error', () => failures++);
    await expect(q.add('target', { targetId: 1 }, { jobId: '1' })).rejects.toThrow();
    // Reconnecting every few hundred ms: five failed attempts, each a line of each kind were it not
    // throttled (within the 3 s this test allows them).
    await waitFor('five failed reconnects', () => failures >= 5, 3000);
    expect(errors).not.toHaveBeenCalled();
    const events = logs.mock.calls.map((c) => JSON.parse(String(c[0])).event as string);
    expect(events.length).toBeGreaterThan(0);
    // At most one line per kind of error.
    expect(events.filter((e) => e === 'redis.producer.error').length).toBeLessThanOrEqual(1);
    expect(events.filter((e) => e === 'queue.error').length).toBeLessThanOrEqual(1);
    await q.close().catch(() => {});
  } finally {
    errors.mockRestore();
    logs.mockRestore();
  }
});
