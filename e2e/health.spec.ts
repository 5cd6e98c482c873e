// GET /healthz and /readyz on the built console, as a load balancer and systemd ask them: alive, and ready
// (pgherd's database writable, the queue's Redis answering), without signing in; nothing else but GET.
import { expect, test } from './fixtures';
import { e2eLab } from './lab';

const url = e2eLab().console.url;

test('the console says it is alive and ready, and why, to anyone who asks', async ({ request }) => {
  const alive = await request.get(`${url}/healthz`);
  expect(alive.status()).toBe(200);
  expect(await alive.json()).toEqual({ alive: true });
  const ready = await request.get(`${url}/readyz`);
  expect(ready.status()).toBe(200);
  expect(await ready.json()).toEqual({ ready: true, database: 'writable', queue: 'reachable' });
  expect(ready.headers()['cache-control']).toBe('no-store');
  const posted = await request.post(`${url}/readyz`, { data: {} });
  expect(posted.status()).toBe(405);
});
