// A TCP proxy on loopback between one client (a worker) and a server (pgherd's database), for fault
// tests that must not disturb the other test files sharing the lab's database: `stall()` holds every
// byte both ways (the database paused, as seen from that client), `cut()` drops every connection and
// refuses new ones (the database down), `hangNew()` accepts new connections but never answers them
// while the open ones go on (a Postgres whose postmaster is frozen), `restore()` ends any of them.
import net from 'node:net';

export interface TcpProxy {
  port: number;
  stall(): void;
  cut(): void;
  hangNew(): void;
  restore(): void;
  close(): Promise<void>;
}

/** `listenHost`: where the proxy listens (the target's own address keeps a certificate verified for it valid). */
export async function startTcpProxy(target: { host: string; port: number }, listenHost = '127.0.0.1'): Promise<TcpProxy> {
  let mode: 'open' | 'stalled' | 'cut' | 'hangNew' = 'open';
  // Held bytes, per direction, flushed in order on restore (no pipe(): it resumes a paused source on 'drain').
  const links = new Set<{ a: net.Socket; b: net.Socket; held: [net.Socket, Buffer][]; hung: boolean }>();
  const server = net.createServer((client) => {
    if (mode === 'cut') return void client.destroy();
    const link = { a: client, b: net.connect(target.port, target.host), held: [] as [net.Socket, Buffer][], hung: mode === 'hangNew' };
    links.add(link);
    const drop = () => {
      link.a.destroy();
      link.b.destroy();
      links.delete(link);
    };
    const forward = (to: net.Socket) => (chunk: Buffer) => {
      if (mode === 'stalled' || link.hung) link.held.push([to, chunk]);
      else to.write(chunk);
    };
    link.a.on('data', forward(link.b)).on('error', drop).on('close', drop);
    link.b.on('data', forward(link.a)).on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, listenHost, resolve));
  const port = (server.address() as net.AddressInfo).port;
  const destroyAll = () => {
    for (const l of [...links]) {
      l.a.destroy();
      l.b.destroy();
    }
    links.clear();
  };
  return {
    port,
    stall() {
      mode = 'stalled';
    },
    cut() {
      mode = 'cut';
      destroyAll();
    },
    hangNew() {
      mode = 'hangNew';
    },
    restore() {
      mode = 'open';
      for (const l of links) {
        l.hung = false;
        for (const [to, chunk] of l.held) to.write(chunk);
        l.held = [];
      }
    },
    async close() {
      destroyAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
