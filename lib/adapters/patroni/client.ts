// Patroni's REST API, as pgherd speaks it: GET /cluster read and validated, and the writes
// (switchover, failover, restart, reload, reinitialize, pause/resume) with basic auth, only to the
// member's own server over https verified with the environment's CA, never the system's (reads, which
// Patroni answers without credentials, may be http). Every failure is a PatroniError in pgherd's words
// (what failed, and a short code): what an address answered is never shown to people, since the
// address is inventory anyone with the operator role once could set, and an echo would let them probe
// what pgherd reaches. The whole answer goes to the process's log (`patroni.error`).
// Checked against Patroni 3.0.2 (Debian 12), patroni/api.py.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { z } from 'zod';
import { restUrlProblem } from './rest-url';

export interface PatroniAccess {
  /** Basic auth for the writes; absent: none sent (reads need none). */
  user?: string;
  password?: string;
  /**
   * Passwords pgherd is rotating to (lib/fleet/objects/own-credentials.ts), tried in turn on a member that
   * refuses `password` (401: Patroni checks credentials before it does anything).
   */
  nextPasswords?: string[];
  /** PEM file of the CA that signed the members' REST certificates (https endpoints). */
  caFile?: string | null;
  /**
   * The member's server (its address, else its host name): credentials go only to an https address
   * of exactly this host. Without it none are sent.
   */
  host?: string;
}

export type PatroniFailure = 'credentials' | 'unreachable' | 'refused' | 'answer';

export class PatroniError extends Error {
  constructor(
    readonly kind: PatroniFailure,
    message: string,
    readonly status?: number,
    /** A short code: ECONNREFUSED, CERT_HAS_EXPIRED, HTTP 412, ... */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'PatroniError';
  }
}

/** The whole of what an address said or did, for whoever runs pgherd: the process's log, never a page. */
function logFailure(what: string, url: string, code: string, detail: string): void {
  console.error(JSON.stringify({ at: new Date().toISOString(), event: 'patroni.error', what, url, code, detail: detail.slice(0, 4000) }));
}

/** Where a request went, in a message: the member's origin only (the path is pgherd's own). */
const at = (url: URL | string) => {
  try {
    return new URL(url).origin;
  } catch {
    return '(not an address)';
  }
};

const memberSchema = z.object({
  name: z.string().min(1),
  role: z.string(),
  state: z.string(),
  api_url: z.string().nullish(),
  host: z.string().optional(),
  port: z.number().int().optional(),
  timeline: z.number().int().optional(),
  /** Bytes behind the leader's last known LSN, or 'unknown' (absent for the leader). */
  lag: z.union([z.number(), z.literal('unknown')]).optional(),
  pending_restart: z.boolean().optional(),
  scheduled_restart: z.unknown().optional(),
  tags: z.record(z.string(), z.unknown()).optional(),
});

export const clusterSchema = z.object({
  members: z.array(memberSchema),
  pause: z.boolean().optional(),
  scheduled_switchover: z.object({ at: z.string(), from: z.string().optional(), to: z.string().optional() }).optional(),
});

export type PatroniMemberView = z.infer<typeof memberSchema>;
export type PatroniClusterView = z.infer<typeof clusterSchema>;

/** The leader Patroni names (the DCS lock holder), or null while nobody holds it. */
export const leaderOf = (c: PatroniClusterView) => c.members.find((m) => m.role === 'leader' || m.role === 'standby_leader') ?? null;

const TIMEOUT_MS = 5_000;

interface Answer {
  status: number;
  body: string;
}

/** One request to a member's REST endpoint, with the next passwords where the one in force is refused. */
async function request(
  baseUrl: string,
  access: PatroniAccess | null,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = TIMEOUT_MS,
) {
  let a = await requestOnce(baseUrl, access, method, path, body, timeoutMs);
  for (const password of access?.nextPasswords ?? []) {
    if (a.status !== 401) break;
    a = await requestOnce(baseUrl, { ...access, password }, method, path, body, timeoutMs);
  }
  return a;
}

/** One request to a member's REST endpoint; a PatroniError for anything but an HTTP answer. */
function requestOnce(
  baseUrl: string,
  access: PatroniAccess | null,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = TIMEOUT_MS,
): Promise<Answer> {
  let url: URL;
  try {
    url = new URL(path, baseUrl);
  } catch {
    return Promise.reject(new PatroniError('unreachable', `${baseUrl} is not a REST endpoint address`));
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return Promise.reject(new PatroniError('unreachable', `${baseUrl}: Patroni's REST API is http or https`));
  const credentials = access?.user !== undefined && access.password !== undefined ? `${access.user}:${access.password}` : null;
  // As with Postgres (lib/fleet/pg-access.ts): a password only goes where TLS verified who answers, against
  // the environment's CA (the system's CAs sign certificates for anyone's name), and only to the member's
  // own server: checked here, where the header is written, whatever the caller checked before.
  if (credentials) {
    const problem = access?.host === undefined ? 'no member server to check it against' : restUrlProblem(baseUrl, access.host);
    if (problem)
      return Promise.reject(
        new PatroniError('credentials', `Patroni's REST credentials not sent to ${at(url)}: ${problem}`, undefined, 'NOT_MEMBER'),
      );
    if (!access?.caFile)
      return Promise.reject(
        new PatroniError(
          'credentials',
          `Patroni's REST credentials not sent to ${at(url)}: no caFile to verify it with`,
          undefined,
          'NO_CA',
        ),
      );
  }
  const payload = body === undefined ? undefined : JSON.stringify(body);
  let ca: Buffer | undefined;
  if (url.protocol === 'https:' && access?.caFile) {
    try {
      ca = readFileSync(access.caFile);
    } catch (err) {
      return Promise.reject(
        new PatroniError('unreachable', `the CA file ${access.caFile} cannot be read: ${(err as Error).message}`, undefined, 'CA_FILE'),
      );
    }
  }
  const failed = (err: Error) => {
    const code = (err as NodeJS.ErrnoException).code ?? (/^no answer in/.test(err.message) ? 'TIMEOUT' : 'ERROR');
    logFailure(method, url.href, code, err.message);
    return new PatroniError('unreachable', `Patroni at ${at(url)} did not answer (${code})`, undefined, code);
  };
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? https : http).request(
      url,
      {
        method,
        headers: {
          accept: 'application/json',
          ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
          ...(credentials ? { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` } : {}),
        },
        ...(ca ? { ca } : {}),
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 1 << 20) req.destroy(new Error('answer over 1 MiB'));
          else chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) => reject(failed(err)));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${String(timeoutMs / 1000)} s`)));
    req.on('error', (err) => reject(failed(err)));
    req.end(payload);
  });
}

/** Patroni's words from an answer (plain text, or an error page's message), short. */
const words = (a: Answer) =>
  a.body
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 300) || `HTTP ${String(a.status)}`;

/** What Patroni means by a status it refuses with (patroni/api.py), in pgherd's words. */
const MEANS: Record<number, string> = {
  400: 'the request is not one it takes',
  404: 'no such endpoint (is this Patroni?)',
  409: 'it conflicts with what Patroni is doing',
  412: 'a condition Patroni checks does not hold (the leader or candidate named, or the member state)',
  500: 'Patroni failed doing it',
  503: 'Patroni cannot do it now (the conditions are not satisfied)',
};

function refusedUnlessOk(a: Answer, what: string, ok: number[], url: string): Answer {
  const fail = (kind: PatroniFailure, why: string) => {
    const code = `HTTP ${String(a.status)}`;
    logFailure(what, url, code, a.body);
    return new PatroniError(kind, `${what}: ${why} (${code})`, a.status, code);
  };
  if (a.status === 401) throw fail('credentials', 'Patroni refused the REST credentials');
  if (a.status === 403) throw fail('credentials', 'Patroni denied access');
  if (!ok.includes(a.status))
    throw fail('refused', `Patroni at ${at(url)} refused: ${MEANS[a.status] ?? 'an answer pgherd does not expect'}`);
  return a;
}

/** GET /cluster of one member: every member as Patroni's DCS has it (what `patronictl list` shows). */
export async function getCluster(restUrl: string, access: PatroniAccess | null): Promise<PatroniClusterView> {
  // Patroni answers reads without credentials: none are sent (an http endpoint may be read too).
  const a = refusedUnlessOk(
    await request(restUrl, { caFile: access?.caFile ?? null }, 'GET', '/cluster'),
    `GET ${restUrl}/cluster`,
    [200],
    restUrl,
  );
  let json: unknown;
  try {
    json = JSON.parse(a.body);
  } catch {
    throw new PatroniError('answer', `GET ${restUrl}/cluster: not JSON (is this Patroni's REST API?)`, a.status, 'NOT_JSON');
  }
  const parsed = clusterSchema.safeParse(json);
  if (!parsed.success) throw new PatroniError('answer', `GET ${restUrl}/cluster: not Patroni's cluster view`, a.status, 'NOT_PATRONI');
  return parsed.data;
}

const memberStatusSchema = z.object({
  state: z.string().optional(),
  role: z.string().optional(),
  database_system_identifier: z.string().optional(),
  patroni: z.object({ scope: z.string(), name: z.string().optional(), version: z.string().optional() }),
  tags: z.record(z.string(), z.unknown()).optional(),
});

export type PatroniMemberStatus = z.infer<typeof memberStatusSchema>;

/**
 * GET /patroni of one member: what that Patroni says of itself (its scope and name, its Postgres's
 * system identifier, role and tags). 503 is an answer too (Patroni says so when Postgres is not running).
 */
export async function getMemberStatus(restUrl: string, access: PatroniAccess | null): Promise<PatroniMemberStatus> {
  const a = refusedUnlessOk(
    await request(restUrl, { caFile: access?.caFile ?? null }, 'GET', '/patroni'),
    `GET ${restUrl}/patroni`,
    [200, 503],
    restUrl,
  );
  let json: unknown;
  try {
    json = JSON.parse(a.body);
  } catch {
    throw new PatroniError('answer', `GET ${restUrl}/patroni: not JSON (is this Patroni's REST API?)`, a.status, 'NOT_JSON');
  }
  const parsed = memberStatusSchema.safeParse(json);
  if (!parsed.success) throw new PatroniError('answer', `GET ${restUrl}/patroni: not a Patroni member's status`, a.status, 'NOT_PATRONI');
  return parsed.data;
}

/**
 * Whether the member takes these credentials, changing nothing: POST /failover with an empty body is
 * checked for access first (401 when refused), then refused as a bad request (400) before anything
 * else is read. Throws a PatroniError('credentials' | 'unreachable') when not.
 */
export async function checkCredentials(restUrl: string, access: PatroniAccess): Promise<void> {
  const a = await request(restUrl, access, 'POST', '/failover', {});
  refusedUnlessOk(a, restUrl, [400], restUrl);
}

/** POST /switchover from `leader` to `candidate` (now, or at `scheduledAt`): Patroni's answer text. */
export async function switchover(
  restUrl: string,
  access: PatroniAccess,
  o: { leader: string; candidate: string; scheduledAt?: Date },
): Promise<string> {
  const body = { leader: o.leader, candidate: o.candidate, ...(o.scheduledAt ? { scheduled_at: o.scheduledAt.toISOString() } : {}) };
  // Patroni answers once the new leader holds the lock (it polls up to 2 x max(10, loop_wait) s).
  const a = await request(restUrl, access, 'POST', '/switchover', body, 60_000);
  return words(refusedUnlessOk(a, `switchover ${o.leader} -> ${o.candidate}`, o.scheduledAt ? [202] : [200], restUrl));
}

/** POST /failover to `candidate` (Patroni allows it without a healthy leader). */
export async function failover(restUrl: string, access: PatroniAccess, candidate: string): Promise<string> {
  const a = await request(restUrl, access, 'POST', '/failover', { candidate }, 60_000);
  return words(refusedUnlessOk(a, `failover to ${candidate}`, [200], restUrl));
}

/** POST /restart of the member at `restUrl` (only when Patroni marks it pending, if asked). */
export async function restart(
  restUrl: string,
  access: PatroniAccess,
  o: { pendingOnly: boolean; timeoutSeconds?: number },
): Promise<string> {
  const body = { ...(o.pendingOnly ? { restart_pending: true } : {}), ...(o.timeoutSeconds ? { timeout: o.timeoutSeconds } : {}) };
  const a = await request(restUrl, access, 'POST', '/restart', body, ((o.timeoutSeconds ?? 60) + 10) * 1000);
  // Patroni answers 503 both when the conditions asked for do not hold and when the restart failed: its
  // exact sentence tells them apart, and becomes a code of pgherd's (the sentence itself is not passed on).
  if (a.status === 503 && /^restart conditions are not satisfied$/.test(a.body.trim()))
    throw new PatroniError('refused', `restart of ${restUrl}: Patroni's restart conditions do not hold (HTTP 503)`, 503, 'NOT_PENDING');
  return words(refusedUnlessOk(a, `restart of ${restUrl}`, [200], restUrl));
}

/** POST /reload: Patroni reloads its configuration and Postgres's. */
export async function reload(restUrl: string, access: PatroniAccess): Promise<string> {
  return words(refusedUnlessOk(await request(restUrl, access, 'POST', '/reload'), `reload of ${restUrl}`, [202], restUrl));
}

/** POST /reinitialize: the member's data directory is removed and cloned again from the leader. */
export async function reinitialize(restUrl: string, access: PatroniAccess): Promise<string> {
  const a = await request(restUrl, access, 'POST', '/reinitialize', { force: true }, 30_000);
  return words(refusedUnlessOk(a, `reinitialize of ${restUrl}`, [200], restUrl));
}

/**
 * PATCH /config: a change to the cluster's dynamic configuration (kept in the DCS, applied by every
 * member on its next cycle); Patroni's whole dynamic configuration after it.
 */
export async function patchConfig(
  restUrl: string,
  access: PatroniAccess,
  patch: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const a = refusedUnlessOk(
    await request(restUrl, access, 'PATCH', '/config', patch),
    'change of the cluster configuration',
    [200],
    restUrl,
  );
  try {
    return JSON.parse(a.body) as Record<string, unknown>;
  } catch {
    throw new PatroniError('answer', `Patroni at ${restUrl} answered the change with no JSON: ${words(a)}`);
  }
}

/** GET /config: the cluster's dynamic configuration as the DCS keeps it. */
export async function getConfig(restUrl: string, access: PatroniAccess): Promise<Record<string, unknown>> {
  const a = refusedUnlessOk(await request(restUrl, access, 'GET', '/config'), 'read of the cluster configuration', [200], restUrl);
  try {
    return JSON.parse(a.body) as Record<string, unknown>;
  } catch {
    throw new PatroniError('answer', `Patroni at ${restUrl} answered GET /config with no JSON: ${words(a)}`);
  }
}

/** PATCH /config {pause}: Patroni's maintenance mode (no automatic failover while paused). */
export async function setPaused(restUrl: string, access: PatroniAccess, paused: boolean): Promise<void> {
  refusedUnlessOk(
    await request(restUrl, access, 'PATCH', '/config', { pause: paused }),
    `${paused ? 'pause' : 'resume'} of the cluster`,
    [200],
    restUrl,
  );
}
