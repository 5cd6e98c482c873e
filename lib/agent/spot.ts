// The spot interruption warning as the instance itself sees it: EC2 writes it to the instance metadata
// (IMDSv2: a session token first, then `/latest/meta-data/spot/instance-action`, 404 until a notice) two
// minutes before it takes the capacity back. The agent relays it to pgherd once, as EventBridge would
// send it, with its own token: pgherd accepts an agent's notice for its own instance only.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AgentConfig } from './discover';

interface Answer {
  status: number;
  body: string;
}

function request(url: URL, method: string, headers: Record<string, string | number>, body = '', ca?: Buffer): Promise<Answer> {
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { method, headers, timeout: 5_000, ...(ca ? { ca } : {}) }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out after 5 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** The event pgherd's endpoint takes, built from what the metadata says; null while there is no notice. */
export async function spotNoticeFromMetadata(
  metadataUrl: string,
): Promise<{ 'detail-type': string; source: string; time: string; region?: string; detail: Record<string, string> } | null> {
  const at = (p: string) => new URL(p, metadataUrl);
  const t = await request(at('/latest/api/token'), 'PUT', { 'x-aws-ec2-metadata-token-ttl-seconds': 60 });
  if (t.status !== 200) throw new Error(`the instance metadata refused a session token (${t.status})`);
  const h = { 'x-aws-ec2-metadata-token': t.body.trim() };
  const action = await request(at('/latest/meta-data/spot/instance-action'), 'GET', h);
  if (action.status === 404) return null;
  if (action.status !== 200) throw new Error(`the instance metadata answered ${action.status} for spot/instance-action`);
  const notice = JSON.parse(action.body) as { action?: string; time?: string };
  const id = await request(at('/latest/meta-data/instance-id'), 'GET', h);
  const region = await request(at('/latest/meta-data/placement/region'), 'GET', h);
  if (id.status !== 200) throw new Error(`the instance metadata answered ${id.status} for instance-id`);
  // The metadata gives when the capacity goes; EventBridge's event is sent two minutes before.
  const goes = notice.time ? Date.parse(notice.time) : NaN;
  return {
    'detail-type': 'EC2 Spot Instance Interruption Warning',
    source: 'aws.ec2',
    time: new Date(Number.isNaN(goes) ? Date.now() : goes - 120_000).toISOString(),
    ...(region.status === 200 ? { region: region.body.trim() } : {}),
    detail: { 'instance-id': id.body.trim(), 'instance-action': notice.action ?? 'terminate' },
  };
}

/** Sends the notice (if there is one) to pgherd with the agent's token; what pgherd answered, or null without a notice. */
export async function relaySpotNotice(cfg: AgentConfig, token: string): Promise<Answer | null> {
  if (!cfg.spot) return null;
  const notice = await spotNoticeFromMetadata(cfg.spot.metadataUrl);
  if (!notice) return null;
  const body = JSON.stringify(notice);
  const url = new URL('/api/v1/spot/interruptions', cfg.server);
  return request(
    url,
    'POST',
    { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    body,
    url.protocol === 'https:' && cfg.caFile ? readFileSync(cfg.caFile) : undefined,
  );
}
