// The REST API, against the built console and a worker over the lab: token auth, validation,
// plan -> submit -> follow, stale plans and double submits.
import { type APIRequestContext } from '@playwright/test';
import { expect, test } from './fixtures';
import { eq } from 'drizzle-orm';
import { createDb } from '../db/client';
import { users } from '../db/schema';
import { createApiToken, revokeApiToken } from '@/lib/features/auth/api-tokens';
import { e2eLab, settledOperation, type ApiOperation } from './lab';

const lab = e2eLab();
const url = lab.console.url;
const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const operate = auth(lab.console.apiToken!);

/** Polls GET /api/v1/operations/{id} until the operation has ended (30 s at most). */
const settled = (request: APIRequestContext, id: number) => settledOperation(request, url, operate, id);

test.describe.configure({ mode: 'serial' });

test('refuses missing, unknown and revoked tokens with 401, and read tokens with 403 on writes', async ({ request }) => {
  expect((await request.get(`${url}/api/v1/instances`)).status()).toBe(401);
  const bad = await request.get(`${url}/api/v1/instances`, { headers: auth('pgh_' + 'x'.repeat(43)) });
  expect(bad.status()).toBe(401);
  expect(await bad.json()).toEqual({ error: 'invalid, expired or revoked token', details: null });

  const { db, pool } = createDb(lab.database.url, 1);
  const [admin] = await db.select().from(users).where(eq(users.username, lab.console.admin.username));
  const read = await createApiToken(db, admin!.id, 'read-only', 'read');
  expect((await request.get(`${url}/api/v1/instances`, { headers: auth(read.token) })).status()).toBe(200);
  const denied = await request.post(`${url}/api/v1/operations/plan`, {
    headers: auth(read.token),
    data: { action: 'reload', instanceIds: [1] },
  });
  expect(denied.status()).toBe(403);
  expect((await denied.json()).error).toMatch(/operate scope/);
  await revokeApiToken(db, read.id);
  expect((await request.get(`${url}/api/v1/instances`, { headers: auth(read.token) })).status()).toBe(401);
  await pool.end();
});

test('EC2 discovery: its passes listed, one asked for (202) and followed to its summary; read tokens refused; bad ids 400/404', async ({
  request,
}) => {
  const listed = await (await request.get(`${url}/api/v1/cloud/discovery`, { headers: operate })).json();
  expect(listed).toMatchObject({ available: true, reason: null });
  const asked = await request.post(`${url}/api/v1/cloud/discovery`, { headers: operate });
  expect(asked.status()).toBe(202);
  const run = (await asked.json()) as { id: number; status: string };
  expect(asked.headers().location).toBe(`/api/v1/cloud/discovery/${run.id}`);
  let seen = run as { id: number; status: string; summary: { updated: number } };
  for (let i = 0; i < 100 && !['done', 'failed'].includes(seen.status); i++) {
    await new Promise((r) => setTimeout(r, 150));
    seen = (await (await request.get(`${url}/api/v1/cloud/discovery/${run.id}`, { headers: operate })).json()) as typeof seen;
  }
  expect(seen).toMatchObject({ status: 'done', error: null, requestedBy: lab.console.admin.username });
  expect(seen.summary.updated).toBeGreaterThanOrEqual(lab.aws!.instances.length);
  // The instances list says each one's type and zone: the EC2 instances', and the RDS herd's source (its class).
  expect(seen.summary).toMatchObject({ rds: { found: 2, skipped: [] } });
  const list = await (await request.get(`${url}/api/v1/instances?zone=eu-west-1a&per=100`, { headers: operate })).json();
  const east = new Set(lab.aws!.instances.filter((i) => i.availabilityZone === 'eu-west-1a').map((i) => i.server));
  expect(list.total).toBe(lab.instances.filter((i) => east.has(i.server)).length + 1);
  expect(new Set(list.items.map((i: { zone: string; instanceType: string }) => `${i.zone} ${i.instanceType}`))).toEqual(
    new Set(['eu-west-1a m6i.large', 'eu-west-1a db.m6i.large']),
  );

  const { db, pool } = createDb(lab.database.url, 1);
  const [admin] = await db.select().from(users).where(eq(users.username, lab.console.admin.username));
  const read = await createApiToken(db, admin!.id, 'read-only', 'read');
  expect((await request.post(`${url}/api/v1/cloud/discovery`, { headers: auth(read.token) })).status()).toBe(403);
  const withBody = await request.post(`${url}/api/v1/cloud/discovery`, { headers: operate, data: { regions: ['us-east-1'] } });
  expect([withBody.status(), (await withBody.json()).error]).toEqual([400, expect.stringContaining('takes no body')]);
  await revokeApiToken(db, read.id);
  await pool.end();
  expect((await request.get(`${url}/api/v1/cloud/discovery/abc`, { headers: operate })).status()).toBe(400);
  expect((await request.get(`${url}/api/v1/cloud/discovery/99999999`, { headers: operate })).status()).toBe(404);
});

test('lists instances with the changelist filters, and refuses bad parameters with 400', async ({ request }) => {
  const res = await request.get(`${url}/api/v1/instances?role=replica&q=db-stg`, { headers: operate });
  expect(res.status()).toBe(200);
  const body = await res.json();
  const expected = lab.instances.filter((i) => i.role === 'replica' && i.environment === 'staging');
  expect(body.total).toBe(expected.length);
  expect(body.items.map((i: { server: string }) => i.server).sort()).toEqual(expected.map((i) => i.server).sort());
  expect(body.items[0]).toMatchObject({ role: 'replica', environment: 'staging', port: expected[0]!.port });
  expect(body.items.map((i: { address: string }) => i.address).sort()).toEqual(expected.map((i) => i.address).sort());

  const bad = await request.get(`${url}/api/v1/instances?role=overlord&bogus=1`, { headers: operate });
  expect(bad.status()).toBe(400);
  const details = (await bad.json()).details.map((d: { path: string }) => d.path);
  expect(details).toEqual(expect.arrayContaining(['role', '(query)']));
  // A sort key the list has not: a 400 naming it, not the default order.
  const unsorted = await request.get(`${url}/api/v1/instances?sort=-server,bogus`, { headers: operate });
  expect([unsorted.status(), (await unsorted.json()).details]).toEqual([
    400,
    [{ path: 'sort', message: expect.stringMatching(/^cannot sort by "bogus": one of .*\bserver\b/) }],
  ]);
  expect((await request.get(`${url}/api/v1/instances?sort=-server`, { headers: operate })).status()).toBe(200);
});

test('plans, submits (202), refuses a stale digest (409), enqueues a repeated key once, and reports the outcome', async ({ request }) => {
  const list = await (await request.get(`${url}/api/v1/instances?q=db-stg-orders`, { headers: operate })).json();
  const ids = list.items.map((i: { id: number }) => i.id);
  const plan = await (
    await request.post(`${url}/api/v1/operations/plan`, { headers: operate, data: { action: 'reload', instanceIds: ids } })
  ).json();
  expect(plan.targets).toHaveLength(3);
  expect(plan.targets[0].steps[1]).toContain('pg_ctl reload on');

  const stale = await request.post(`${url}/api/v1/operations`, {
    headers: operate,
    data: { action: 'reload', instanceIds: ids, digest: '0'.repeat(32), confirm: plan.confirm ?? '' },
  });
  expect(stale.status()).toBe(409);
  expect((await stale.json()).details.digest).toBe(plan.digest);

  const malformed = await request.post(`${url}/api/v1/operations`, {
    headers: { ...operate, 'content-type': 'application/json' },
    data: '{"action": "reload", "instanceIds": ["1; DROP TABLE"]',
  });
  expect(malformed.status()).toBe(400);

  const submit = () =>
    request.post(`${url}/api/v1/operations`, {
      headers: operate,
      data: { action: 'reload', instanceIds: ids, digest: plan.digest, confirm: plan.confirm ?? '', idempotencyKey: 'api-test-1' },
    });
  const first = await submit();
  expect(first.status()).toBe(202);
  const { id } = await first.json();
  expect(await (await submit()).json()).toMatchObject({ id, duplicate: true });
  // The Idempotency-Key header works as the body's key does; a bad or contradicting one is a 400.
  const byHeader = (key: string, extra: Record<string, unknown> = {}) =>
    request.post(`${url}/api/v1/operations`, {
      headers: { ...operate, 'Idempotency-Key': key },
      data: { action: 'reload', instanceIds: ids, digest: plan.digest, confirm: plan.confirm ?? '', ...extra },
    });
  expect(await (await byHeader('api-test-1')).json()).toMatchObject({ id, duplicate: true });
  expect((await byHeader('api-test-1', { instanceIds: ids.slice(1) })).status()).toBe(409);
  expect((await byHeader('bad key!')).status()).toBe(400);
  expect((await byHeader('api-test-2', { idempotencyKey: 'api-test-3' })).status()).toBe(400);

  const op = await settled(request, id);
  expect(op.status).toBe('succeeded');
  expect(op.targets).toHaveLength(3);
  expect(op.targets.every((t) => t.status === 'succeeded' && t.steps.some((s) => s.name === 'reload' && s.exitCode === 0))).toBe(true);
  expect((await request.get(`${url}/api/v1/operations/999999`, { headers: operate })).status()).toBe(404);
});

test('waves: the plan lists them, bad ones are a 400 that says where, and a rolling operation pauses, resumes and aborts over the API', async ({
  request,
}) => {
  const list = await (await request.get(`${url}/api/v1/instances?q=db-stg-orders`, { headers: operate })).json();
  const ids = (list.items as { id: number; server: string }[]).sort((a, b) => a.server.localeCompare(b.server)).map((i) => i.id);
  expect(ids).toHaveLength(3);
  const plan = (waves: unknown) =>
    request.post(`${url}/api/v1/operations/plan`, { headers: operate, data: { action: 'reload', instanceIds: ids, waves } });

  const bad = await plan({ size: 2, percent: 10, gate: { soakSeconds: -1 } });
  expect(bad.status()).toBe(400);
  expect((await bad.json()).details).toEqual(expect.arrayContaining([{ path: 'waves.gate.soakSeconds', message: expect.any(String) }]));
  expect((await plan({ size: 1, colour: 'red' })).status()).toBe(400);

  // A soak of 30 s after the canary: the pause below comes well before the second wave could start.
  const waves = { size: 2, canary: 1, gate: { soakSeconds: 30, maxLagBytes: 16777216, deadlineSeconds: 60 }, budget: { failures: 1 } };
  const planned = await (await plan(waves)).json();
  expect(planned.waves.summary).toMatch(/^2 waves; a canary of 1 first; then 2 at a time; between waves/);
  expect(planned.waves.waves.map((w: { targets: { instanceId: number }[] }) => w.targets.map((t) => t.instanceId))).toEqual([
    [ids[0]],
    [ids[1], ids[2]],
  ]);
  expect(planned.targets.map((t: { wave: number }) => t.wave)).toEqual([1, 2, 2]);

  // The waves are part of the plan's digest: other waves (or none) with this digest are a stale plan.
  for (const other of [undefined, { ...waves, gate: { soakSeconds: 0 } }]) {
    const stale = await request.post(`${url}/api/v1/operations`, {
      headers: operate,
      data: { action: 'reload', instanceIds: ids, digest: planned.digest, confirm: planned.confirm ?? '', waves: other },
    });
    expect(stale.status()).toBe(409);
  }

  // A rolling operation: paused before its second wave, aborted there; the API says so at every turn.
  const res = await request.post(`${url}/api/v1/operations`, {
    headers: operate,
    data: { action: 'reload', instanceIds: ids, digest: planned.digest, confirm: planned.confirm ?? '', waves },
  });
  expect(res.status()).toBe(202);
  const { id } = (await res.json()) as { id: number };
  const pause = await request.post(`${url}/api/v1/operations/${id}/pause`, { headers: operate });
  expect(pause.status()).toBe(202);
  expect((await request.post(`${url}/api/v1/operations/${id}/pause`, { headers: operate })).status()).toBe(409);
  expect((await request.post(`${url}/api/v1/operations/${id}/explode`, { headers: operate })).status()).toBe(404);
  const paused = await (await request.get(`${url}/api/v1/operations/${id}`, { headers: operate })).json();
  expect(paused.pausedReason).toBe(`paused by ${lab.console.admin.username}`);
  expect(paused.waves.list.map((w: { wave: number }) => w.wave)).toEqual([1, 2]);
  expect((await request.post(`${url}/api/v1/operations/${id}/abort`, { headers: operate })).status()).toBe(202);
  const op = await settled(request, id);
  // The canary may have run before the pause; nothing after it did.
  expect(op.targets.slice(1).map((t) => t.status)).toEqual(['cancelled', 'cancelled']);
  expect(op.targets.slice(1).every((t) => t.steps.length === 0)).toBe(true);
  expect((await request.post(`${url}/api/v1/operations/${id}/resume`, { headers: operate })).status()).toBe(409);
  // Finished: an abort is refused too, and changes nothing.
  const late = await request.post(`${url}/api/v1/operations/${id}/abort`, { headers: operate });
  expect(late.status()).toBe(409);
  expect((await late.json()).error).toBe(`operation #${id} has finished: it cannot be aborted`);
});

test('action parameters: validated by the action, part of the plan and its digest, kept with the operation', async ({ request }) => {
  const list = await (await request.get(`${url}/api/v1/instances?q=db-stg-identity`, { headers: operate })).json();
  const idOf = (prefix: string) => list.items.find((i: { server: string }) => i.server.startsWith(prefix)).id as number;
  const target = idOf('db-stg-identity-3.');
  const upstream = idOf('db-stg-identity-2.');
  const plan = (params?: object, action = 'remaster') =>
    request.post(`${url}/api/v1/operations/plan`, { headers: operate, data: { action, instanceIds: [target], params } });

  const bad = await plan({ upstreamInstanceId: 'abc' });
  expect(bad.status()).toBe(400);
  const badBody = await bad.json();
  expect(badBody.details.params).toMatch(/upstreamInstanceId/);
  expect((await (await plan({ upstreamInstanceId: 1 }, 'reload')).json()).details.params).toBe('reload takes no parameters');

  const chosen = await (await plan({ upstreamInstanceId: upstream })).json();
  expect(chosen.params).toEqual({ upstreamInstanceId: upstream });
  expect(chosen.targets[0].steps[0]).toContain('db-stg-identity-2');
  const byDefault = await (await plan()).json();
  expect(byDefault.digest).not.toBe(chosen.digest);

  // The digest of one choice does not confirm another.
  const mixed = await request.post(`${url}/api/v1/operations`, {
    headers: operate,
    data: {
      action: 'remaster',
      instanceIds: [target],
      digest: byDefault.digest,
      params: { upstreamInstanceId: upstream },
      confirm: chosen.confirm ?? '',
    },
  });
  expect(mixed.status()).toBe(409);
  const ok = await request.post(`${url}/api/v1/operations`, {
    headers: operate,
    data: {
      action: 'remaster',
      instanceIds: [target],
      digest: chosen.digest,
      params: { upstreamInstanceId: upstream },
      confirm: chosen.confirm ?? '',
    },
  });
  expect(ok.status()).toBe(202);
  const { id } = await ok.json();
  expect(await settled(request, id)).toMatchObject({ status: 'succeeded', params: { upstreamInstanceId: upstream } });
  // Back to the primary, as the lab started.
  const back = await (await plan()).json();
  const again = await request.post(`${url}/api/v1/operations`, {
    headers: operate,
    data: { action: 'remaster', instanceIds: [target], digest: back.digest, confirm: back.confirm ?? '' },
  });
  expect(again.status()).toBe(202);
  expect((await settled(request, (await again.json()).id)).status).toBe('succeeded');
});

test('the old names rds-reboot and rds-add-replica plan restart and add-replica, and say so in a Deprecation header', async ({
  request,
}) => {
  const herd = (
    (await (await request.get(`${url}/api/v1/herds?q=identity`, { headers: operate })).json()).items as {
      id: number;
      environment: string;
      members: { id: number }[];
    }[]
  ).find((h) => h.environment === 'staging')!;
  const added = await request.post(`${url}/api/v1/operations/plan`, {
    headers: operate,
    data: { action: 'rds-add-replica', herdIds: [herd.id], params: { instanceClass: 'db.m6i.large' } },
  });
  expect(added.status()).toBe(200);
  expect(added.headers().deprecation).toBe('@1795737600');
  expect(added.headers().warning).toMatch(/^299 pgherd "rds-add-replica is now add-replica/);
  const body = await added.json();
  expect(body).toMatchObject({ action: 'add-replica', deprecated: expect.stringMatching(/^rds-add-replica is now add-replica/) });
  // A herd pgherd runs over SSH: the old name refuses it in the old action's words (Add replica is the way).
  expect(body.targets[0].refused).toMatch(/is not run by RDS: use Add replica/);
  // The old reboot refuses a member pgherd restarts over SSH, as it did, and reboots the member RDS runs.
  const rebooted = await request.post(`${url}/api/v1/operations/plan`, {
    headers: operate,
    data: { action: 'rds-reboot', instanceIds: [herd.members[0]!.id] },
  });
  expect(rebooted.status()).toBe(200);
  expect(rebooted.headers().deprecation).toBe('@1795737600');
  const onSsh = await rebooted.json();
  expect(onSsh).toMatchObject({ action: 'restart', deprecated: expect.stringMatching(/^rds-reboot is now restart/) });
  expect(onSsh.targets[0].refused).toMatch(/is not an RDS DB instance: use Restart/);
  const reports = (
    (await (await request.get(`${url}/api/v1/herds?driver=rds`, { headers: operate })).json()).items as {
      name: string;
      members: { id: number; role: string }[];
    }[]
  ).find((h) => h.name === 'reports')!;
  const onRds = await (
    await request.post(`${url}/api/v1/operations/plan`, {
      headers: operate,
      data: { action: 'rds-reboot', instanceIds: [reports.members.find((m) => m.role === 'replica')!.id] },
    })
  ).json();
  expect(onRds.targets[0].refused).toBeNull();
  expect(onRds.targets[0].steps.join('\n')).toMatch(/reboot/i);
  // An answer that refuses the request says the name is deprecated too.
  const bad = await request.post(`${url}/api/v1/operations/plan`, {
    headers: operate,
    data: { action: 'rds-reboot', instanceIds: [herd.members[0]!.id], params: { bogus: 1 } },
  });
  expect(bad.status()).toBe(400);
  expect(bad.headers().deprecation).toBe('@1795737600');
  // The current names carry no such header.
  const now = await request.post(`${url}/api/v1/operations/plan`, {
    headers: operate,
    data: { action: 'restart', instanceIds: [herd.members[0]!.id] },
  });
  expect(now.headers().deprecation).toBeUndefined();
  expect((await now.json()).deprecated).toBeUndefined();
});

test('lists herds with their primary, members and DNS; switches one over to the candidate the body names', async ({ request }) => {
  const herds = async (qs: string) => request.get(`${url}/api/v1/herds${qs}`, { headers: operate });
  expect((await herds('?driver=nope')).status()).toBe(400);
  expect((await herds('?colour=red')).status()).toBe(400);
  const list = await (await herds('?q=identity')).json();
  expect(list.total).toBe(2);
  const herd = list.items.find((h: { environment: string }) => h.environment === 'staging');
  const lab3 = lab.instances.filter((i) => i.environment === 'staging' && i.herd === 'identity');
  const primary = lab3.find((i) => i.role === 'primary')!;
  expect(herd.primary.label).toBe(`${primary.server}:${primary.port}`);
  expect(herd.members).toHaveLength(3);
  expect(herd.dns).toEqual([
    expect.objectContaining({
      name: lab.dns!.herds.find((h) => h.environment === 'staging' && h.herd === 'identity')!.writeName,
      type: 'CNAME',
      ttl: 30,
    }),
  ]);
  const candidate = herd.members.find(
    (m: { role: string; label: string }) => m.role === 'replica' && m.label.startsWith('db-stg-identity-3.'),
  );

  // A parameter the action does not take is refused; candidateInstanceId beside params is the switchover's.
  const reload = await request.post(`${url}/api/v1/operations/plan`, {
    headers: operate,
    data: { action: 'reload', instanceIds: [candidate.id], candidateInstanceId: candidate.id },
  });
  expect(reload.status()).toBe(400);
  const plan = await (
    await request.post(`${url}/api/v1/operations/plan`, {
      headers: operate,
      data: { action: 'switchover', herdIds: [herd.id], candidateInstanceId: candidate.id },
    })
  ).json();
  expect(plan.params).toEqual({ candidateInstanceId: candidate.id });
  expect(plan.targets[0].facts).toContainEqual({ label: 'New primary', value: expect.stringContaining(candidate.label) });
  const res = await request.post(`${url}/api/v1/operations`, {
    headers: operate,
    data: { action: 'switchover', herdIds: [herd.id], candidateInstanceId: candidate.id, digest: plan.digest, confirm: plan.confirm ?? '' },
  });
  expect(res.status()).toBe(202);
  const op = (await settled(request, (await res.json()).id)) as ApiOperation & { targets: { outcome: string }[] };
  expect(op.status).toBe('succeeded');
  expect(op.targets[0]!.outcome).toContain(`${String(candidate.label)} is the primary`);
  const after = (await (await herds('?q=identity')).json()).items.find((h: { id: number }) => h.id === herd.id);
  expect(after.primary.label).toBe(candidate.label);
});
