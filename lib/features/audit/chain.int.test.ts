// The audit log's hash chain and its export for a SIEM: entries sealed in the order they commit (one
// committed late is sealed after those sealed before it), exported as JSON lines a reader checks alone;
// an entry changed or a seal taken out behind pgherd's back shows; each reader gets their environments'
// entries; bad ranges are refused with nothing read.
import { sql } from 'drizzle-orm';
import { NextRequest } from 'next/server';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { environments, roleBindings, users } from '@/db/schema';
import { createApiToken } from '@/lib/features/auth/api-tokens';
import { writeAudit } from '@/lib/engine/write-audit';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import * as exportRoute from '@/app/api/v1/audit/export/route';
import { checkChain, GENESIS, sealAudit, type ChainLine } from './chain';

let t: TestDb;
const env = new Map<string, number>();
let rootToken = '';
let stgToken = '';

const call = async (query: string, token = rootToken) => {
  const req = new NextRequest(`http://127.0.0.1/api/v1/audit/export${query}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const res = await exportRoute.GET(req, { params: Promise.resolve({}) });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
};
const lines = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ChainLine);
const since = new Date(Date.now() - 3_600_000).toISOString();
const entry = (action: string, environmentId: number | null) => ({
  user: { id: null, username: 'auditor-test' },
  remoteAddr: '10.0.0.1',
  action,
  objectType: 'test',
  objectId: action,
  environmentId,
  changes: { b: [1, 2], a: [{ z: 'x', y: null }, null] } as Record<string, [unknown, unknown]>,
});

beforeAll(async () => {
  t = await freshDatabase();
  process.env.DATABASE_URL = t.url; // the route's own getDb()
  for (const name of ['production', 'staging']) {
    const [e] = await t.db.insert(environments).values({ name }).onConflictDoNothing().returning();
    if (e) env.set(name, e.id);
  }
  for (const e of await t.db.select().from(environments)) env.set(e.name, e.id);
  const [r] = await t.db.insert(users).values({ username: 'root-audit', source: 'local', isSuperuser: true }).returning();
  const [s] = await t.db.insert(users).values({ username: 'stg-audit', source: 'local' }).returning();
  await t.db.insert(roleBindings).values({ role: 'viewer', subjectType: 'user', subject: 'stg-audit', environmentId: env.get('staging')! });
  rootToken = (await createApiToken(t.db, r!.id, 'r', 'read')).token;
  stgToken = (await createApiToken(t.db, s!.id, 'r', 'read')).token;
}, 60_000);

afterAll(async () => {
  await ifAssigned(t)?.close();
});

describe('the audit chain', () => {
  it('seals what committed, a late commit after those sealed before it, and every export line checks', async () => {
    await writeAudit(t.db, [entry('one', env.get('production')!), entry('two', env.get('staging')!), entry('three', null)]);
    // A transaction that took its id first and commits after a later one was sealed.
    const late = new pg.Client({ connectionString: t.url });
    await late.connect();
    try {
      await late.query('BEGIN');
      await late.query(
        "INSERT INTO audit_entries (username, action, object_type, environment_id) VALUES ('auditor-test', 'late', 'test', $1)",
        [env.get('staging')!],
      );
      await writeAudit(t.db, entry('four', env.get('staging')!));
      await sealAudit(t.db);
      await late.query('COMMIT');
    } finally {
      await late.end();
    }
    expect(await sealAudit(t.db)).toBe(1);
    expect(await sealAudit(t.db)).toBe(0);

    const r = await call(`?from=${encodeURIComponent(since)}`);
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/application\/x-ndjson/);
    const all = lines(r.text);
    const mine = all.filter((l) => l.entry.user === 'auditor-test');
    // Sealed in commit order: the late one last, after 'four', though its id is smaller.
    expect(mine.map((l) => l.entry.action)).toEqual(['one', 'two', 'three', 'four', 'late']);
    expect(mine.find((l) => l.entry.action === 'late')!.entry.id).toBeLessThan(mine.find((l) => l.entry.action === 'four')!.entry.id);
    expect(all.map((l) => l.seq)).toEqual(all.map((_, i) => all[0]!.seq + i));
    expect(checkChain(all)).toEqual({ lines: all.length, broken: [], gaps: [] });
    if (all[0]!.seq === 1) expect(all[0]!.prevHash).toBe(GENESIS);
    expect(mine[0]!.entry.changes).toEqual({ a: [{ y: null, z: 'x' }, null], b: [1, 2] });
    expect(mine[0]!.entry.at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
  });

  it("gives each reader their environments' entries, and no one's sign-ins to an environment's viewer", async () => {
    const r = await call(`?from=${encodeURIComponent(since)}`, stgToken);
    expect(r.status).toBe(200);
    const got = lines(r.text).filter((l) => l.entry.user === 'auditor-test');
    expect(got.map((l) => l.entry.action)).toEqual(['two', 'four', 'late']);
    // Each line still checks on its own; what is not theirs shows as gaps.
    const check = checkChain(got);
    expect(check.broken).toEqual([]);
    expect(check.gaps.length).toBeGreaterThan(0);
  });

  it('shows an entry changed and a seal taken out behind its back; the chain refuses to be changed', async () => {
    const refused = await t.db.execute(sql`UPDATE audit_chain SET hash = 'x'`).catch((e: unknown) => e as Error);
    expect(String((refused as Error).cause)).toMatch(/the audit chain cannot be changed or deleted/);
    const before = lines((await call(`?from=${encodeURIComponent(since)}`)).text);
    const two = before.find((l) => l.entry.action === 'two')!;
    const three = before.find((l) => l.entry.action === 'three')!;
    // The table's owner, with its triggers off, as only a DBA could.
    const owner = new pg.Client({ connectionString: t.url });
    await owner.connect();
    try {
      await owner.query('ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only');
      await owner.query("UPDATE audit_entries SET username = 'someone-else' WHERE id = $1", [two.entry.id]);
      await owner.query('ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only');
      await owner.query('ALTER TABLE audit_chain DISABLE TRIGGER audit_chain_append_only');
      await owner.query('DELETE FROM audit_chain WHERE seq = $1', [three.seq]);
      await owner.query('ALTER TABLE audit_chain ENABLE TRIGGER audit_chain_append_only');
    } finally {
      await owner.end();
    }
    const after = lines((await call(`?from=${encodeURIComponent(since)}`)).text);
    const check = checkChain(after);
    expect(check.broken).toEqual([{ seq: two.seq, why: expect.stringMatching(/entry was changed/) as unknown }]);
    expect(check.gaps).toEqual([{ after: three.seq - 1, before: three.seq + 1 }]);
  });

  it('refuses a range it cannot answer, and a token that is not one', async () => {
    for (const q of [
      '',
      '?from=yesterday',
      `?from=${encodeURIComponent(since)}&to=${encodeURIComponent(new Date(Date.parse(since) - 1000).toISOString())}`,
      `?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z`,
      `?from=${encodeURIComponent(since)}&limit=5`,
    ]) {
      const r = await call(q);
      expect(r.status, q).toBe(400);
      expect(JSON.parse(r.text).error).toBeTruthy();
    }
    expect((await call(`?from=${encodeURIComponent(since)}`, 'pgh_not-a-token')).status).toBe(401);
  });
});
