import { spawn } from 'node:child_process';
import { chownSync, mkdirSync, openSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { asLabUser, type Identity } from './proc';
import { waitFor } from '@/lib/testing/wait';

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('error', () => resolve(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
  });
}

/** redis-server as the queue's transport only: no RDB, no AOF, never evicting (BullMQ's keys must stay). */
export function redisServerArgv(port: number, bind: string, dir: string): string[] {
  return [
    '/usr/bin/redis-server',
    '--port',
    String(port),
    '--bind',
    bind,
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--maxmemory-policy',
    'noeviction',
  ];
}

/** Redis as the queue transport only: no RDB, no AOF. Returns the server's PID. */
export async function startRedis(id: Identity, dir: string, port: number): Promise<number> {
  const home = path.join(dir, 'redis');
  mkdirSync(home, { recursive: true });
  chownSync(home, id.uid, id.gid);
  const out = openSync(path.join(dir, 'redis.log'), 'a');
  const [cmd, ...args] = asLabUser(id, redisServerArgv(port, '127.0.0.1', home));
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  await waitFor(`redis on port ${port}`, async () => ((await ping(port)) ? true : undefined), 15_000);
  return child.pid!;
}
