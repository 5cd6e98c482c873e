// A webhook receiver on loopback for the tests that follow pgherd's alarms: every POST it is sent,
// with its event header and its JSON body, answered 200.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WebhookReceiver {
  /** Its address, with `path`. */
  url: (path: string) => string;
  received: { event: string; body: Record<string, unknown> }[];
  close: () => Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: WebhookReceiver['received'] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (b: Buffer) => (body += b.toString()));
    req.on('end', () => {
      received.push({ event: String(req.headers['x-pgherd-event']), body: JSON.parse(body) as Record<string, unknown> });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (path) => `http://127.0.0.1:${String(port)}${path}`,
    received,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
