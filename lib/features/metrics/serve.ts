// GET /metrics: the Prometheus text format, for whoever holds the token (PGHERD_METRICS_TOKEN), or
// for whoever reaches a listen address of its own (PGHERD_METRICS_LISTEN on the web process,
// PGHERD_WORKER_METRICS_LISTEN on a worker: an address only the monitoring network reaches). With a
// token set, every /metrics asks for it, its own address included.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export const METRICS_PATH = '/metrics';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Whether the request carries the token (compared in constant time); true when no token is set. */
export function hasToken(authorization: string | undefined, token: string | null): boolean {
  if (token === null) return true;
  const given = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
  return given !== undefined && timingSafeEqual(digest(given), digest(token));
}

function json(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Answers GET /metrics: 401 without the token (when one is set), 405 for another method. */
export async function serveMetrics(req: IncomingMessage, res: ServerResponse, registry: Registry, token: string | null): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return void json(res, 405, { error: 'GET /metrics only' }, { allow: 'GET, HEAD' });
  if (!hasToken(req.headers.authorization, token))
    return void json(
      res,
      401,
      { error: 'the metrics token is required: Authorization: Bearer <PGHERD_METRICS_TOKEN>' },
      {
        'www-authenticate': 'Bearer realm="pgherd metrics"',
      },
    );
  try {
    const text = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : text);
  } catch (err) {
    json(res, 500, { error: `metrics could not be collected: ${err instanceof Error ? err.message : String(err)}` });
  }
}

/** A listener of its own that answers /metrics only (anything else is 404). */
export async function listenForMetrics(
  listen: { host: string; port: number },
  registry: Registry,
  token: string | null,
): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.url?.split('?')[0] !== METRICS_PATH) return void json(res, 404, { error: `only ${METRICS_PATH} is served here` });
    void serveMetrics(req, res, registry, token);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return {
    url: `http://${host}:${port}${METRICS_PATH}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
