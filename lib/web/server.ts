// The console's web server (npm start): Next.js behind a plain node:http server, for one reason: the
// app cannot see the TCP peer (Next keeps an X-Forwarded-For the client sent), and the sign-in
// throttle and the audit log must not believe a header the client controls. This server works the
// client's address out from the socket and PGHERD_TRUSTED_PROXIES (lib/auth/client-address.ts) and
// hands it to the app in a header of its own, overwritten on every request.
// Usage: tsx lib/web/server.ts [-p PORT] [-H HOST]
import { createServer } from 'node:http';
import path from 'node:path';
import next from 'next';
import { AGENT_REPORT_PATH, agentReports } from '@/lib/agent/http';
import { CLIENT_ADDRESS_HEADER, clientAddressOf, trustedProxies } from '@/lib/auth/client-address';

function arg(flag: string, fallback: string): string {
  const i = process.argv.indexOf(flag);
  const value = i >= 0 ? process.argv[i + 1] : undefined;
  return value || fallback;
}

async function main() {
  const port = Number(arg('-p', process.env.PORT ?? '3000'));
  const hostname = arg('-H', '0.0.0.0');
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`-p: ${port} is not a port`);
  const proxies = trustedProxies(process.env.PGHERD_TRUSTED_PROXIES);
  const app = next({ dev: false, dir: path.join(__dirname, '..', '..'), hostname, port });
  const handle = app.getRequestHandler();
  await app.prepare();
  // The agents' reports are answered here, before Next (see lib/agent/http.ts).
  const reports = agentReportsHere();
  const server = createServer((req, res) => {
    if (reports && req.method === 'POST' && req.url?.split('?')[0] === AGENT_REPORT_PATH) {
      void reports.serve(req, res);
      return;
    }
    const client = clientAddressOf(req.socket.remoteAddress, req.headers['x-forwarded-for'], proxies);
    req.headers[CLIENT_ADDRESS_HEADER] = client;
    // Next fills X-Forwarded-For only when it is absent: the app sees the same answer there too.
    req.headers['x-forwarded-for'] = client;
    void handle(req, res);
  });
  server.listen(port, hostname, () =>
    console.log(
      JSON.stringify({ event: 'web.ready', url: `http://${hostname}:${port}`, trustedProxies: process.env.PGHERD_TRUSTED_PROXIES ?? '' }),
    ),
  );
  // Keep-alive connections would hold close() open for ever: end them, and do not wait past 5 s.
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 1000).unref();
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** Answers agent reports before Next (lib/agent/http.ts); null (Next answers them) when no database is configured. */
function agentReportsHere() {
  const url = process.env.DATABASE_URL;
  if (!url) return null;
  const log = (event: string, fields: object) => console.error(JSON.stringify({ event, ...fields }));
  return agentReports(url, log, {
    pool: Number(process.env.PGHERD_AGENT_DB_POOL ?? 4),
    writers: Number(process.env.PGHERD_INGEST_WRITERS ?? 2),
  });
}

main().catch((err: unknown) => {
  console.error(`web: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
