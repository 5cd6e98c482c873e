// The console's web server (npm start): Next.js behind a plain node:http server, for one reason: the
// app cannot see the TCP peer (Next keeps an X-Forwarded-For the client sent), and the sign-in
// throttle and the audit log must not believe a header the client controls. This server works the
// client's address out from the socket and PGHERD_TRUSTED_PROXIES (lib/features/auth/client-address.ts) and
// hands it to the app in a header of its own, overwritten on every request.
// Usage: tsx lib/entry/web/server.ts [-p PORT] [-H HOST] (else the environment's PORT and HOST; 3000, 0.0.0.0)
import { createServer } from 'node:http';
import path from 'node:path';
import next from 'next';
import { AGENT_REPORT_PATH, agentReports } from '@/lib/features/agents/http';
import { CLIENT_ADDRESS_HEADER, clientAddressOf, trustedProxies } from '@/lib/features/auth/client-address';
import { createDb } from '@/db/client';
import { registerFleetGauges, type CountedQueue } from '@/lib/features/metrics/fleet';
import { metrics } from '@/lib/adapters/metrics/registry';
import { listenForMetrics, METRICS_PATH, serveMetrics } from '@/lib/features/metrics/serve';
import { webQueue, webRedisPing, webRuleQueue } from '@/lib/entry/web/web-queue';
import { readiness, serveHealth } from '@/lib/features/health/ready';
import { checkSettings, setting } from '@/lib/settings/settings';

function arg(flag: string, fallback: string): string {
  const i = process.argv.indexOf(flag);
  const value = i >= 0 ? process.argv[i + 1] : undefined;
  return value || fallback;
}

async function main() {
  // Every setting checked before anything starts: a bad one stops the console here, saying which.
  checkSettings('web');
  const port = Number(arg('-p', process.env.PORT ?? '3000'));
  const hostname = arg('-H', process.env.HOST ?? '0.0.0.0');
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`-p: ${port} is not a port`);
  const proxies = trustedProxies(setting('PGHERD_TRUSTED_PROXIES'));
  const token = setting('PGHERD_METRICS_TOKEN');
  const metricsListen = setting('PGHERD_METRICS_LISTEN');
  const app = next({ dev: false, dir: path.join(__dirname, '..', '..', '..'), hostname, port });
  const handle = app.getRequestHandler();
  await app.prepare();
  // The agents' reports are answered here, before Next (answerReport).
  const reports = agentReportsHere();
  const registry = fleetMetrics();
  // /metrics on this port only behind the token; without one, on its own address or not at all.
  const ownMetrics = metricsListen ? await listenForMetrics(metricsListen, registry, token) : null;
  // /healthz and /readyz (lib/features/health/ready.ts): a pool of their own, bounded, made on first use.
  let stopping = false;
  let healthPool: ReturnType<typeof createDb>['pool'] | null = null;
  const ready = () => {
    const url = process.env.DATABASE_URL;
    if (url)
      healthPool ??= createDb(url, 1, { application_name: 'pgherd-readyz', connectionTimeoutMillis: 2000, query_timeout: 2000 }).pool;
    return readiness(healthPool, webRedisPing(), stopping);
  };
  const server = createServer((req, res) => {
    const where = req.url?.split('?')[0];
    if (serveHealth(req, res, where, ready)) return;
    if (reports && req.method === 'POST' && where === AGENT_REPORT_PATH) {
      void reports.serve(req, res);
      return;
    }
    if (where === METRICS_PATH) {
      if (token) return void serveMetrics(req, res, registry, token);
      const body = JSON.stringify({
        error: `not served on this address: set PGHERD_METRICS_TOKEN to serve ${METRICS_PATH} here, or PGHERD_METRICS_LISTEN for an address of its own`,
      });
      res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      return void res.end(body);
    }
    const client = clientAddressOf(req.socket.remoteAddress, req.headers['x-forwarded-for'], proxies);
    req.headers[CLIENT_ADDRESS_HEADER] = client;
    // Next fills X-Forwarded-For only when it is absent: the app sees the same answer there too.
    req.headers['x-forwarded-for'] = client;
    void handle(req, res);
  });
  // A balancer keeps idle connections to the console and reuses them: Node's 5 s default would close one
  // as the balancer sends on it (a 502 where the balancer does not try again). Idle connections are the
  // balancer's to close (HAProxy purges its idle ones within seconds; an ALB after 60 s).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.listen(port, hostname, () =>
    console.log(
      JSON.stringify({
        event: 'web.ready',
        url: `http://${hostname}:${port}`,
        trustedProxies: setting('PGHERD_TRUSTED_PROXIES').join(', '),
        metrics: ownMetrics?.url ?? (token ? `http://${hostname}:${port}${METRICS_PATH} (token)` : 'off'),
      }),
    ),
  );
  // Told to stop: not ready at once, still serving for the drain (the balancer moves the clients away),
  // then closed. Keep-alive connections would hold close() open for ever: end them, and do not wait past 5 s.
  const drainMs = setting('PGHERD_WEB_DRAIN_MS');
  const close = () => {
    void ownMetrics?.close();
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 1000).unref();
    setTimeout(() => process.exit(0), 5000).unref();
  };
  const stop = () => {
    if (stopping) return;
    stopping = true;
    if (drainMs > 0) console.log(JSON.stringify({ event: 'web.draining', ms: drainMs }));
    setTimeout(close, drainMs);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/**
 * This process's metrics, with the fleet's gauges read from pgherd's database and the queues when
 * scraped (lib/features/metrics/fleet.ts): the web process is where they are exported, once for the fleet.
 */
function fleetMetrics() {
  const { registry } = metrics();
  const url = process.env.DATABASE_URL;
  if (!url) return registry;
  let db: ReturnType<typeof createDb>['db'] | null = null;
  const queues = (): CountedQueue[] => [webQueue(), webRuleQueue()].filter((q) => q !== null);
  // A database that accepts connections and answers nothing must not hold a scrape: connects, queries
  // and the server's statements are bounded (and fleet.ts races each read against the same bound).
  const bounded = {
    application_name: 'pgherd-metrics',
    connectionTimeoutMillis: 3000,
    query_timeout: 4000,
    options: '-c statement_timeout=4000',
  };
  registerFleetGauges(registry, () => (db ??= createDb(url, 2, bounded).db), queues);
  return registry;
}

/** Answers agent reports before Next (answerReport); null (Next answers them) when no database is configured. */
function agentReportsHere() {
  const url = process.env.DATABASE_URL;
  if (!url) return null;
  const log = (event: string, fields: object) => console.error(JSON.stringify({ event, ...fields }));
  return agentReports(url, log, {
    pool: setting('PGHERD_AGENT_DB_POOL'),
    writers: setting('PGHERD_INGEST_WRITERS'),
  });
}

main().catch((err: unknown) => {
  console.error(`web: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
