// Migration 0051 on a database that has data: every id it widens keeps its value and what refers to
// it, the sequences become bigint ones that go on from where they were, past 2^31.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createDb } from './client';
import { migrateDatabase, MIGRATIONS_DIR } from './migrate';
import { readLab } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';

const BEFORE = '0050_no_primary';
const WIDENED: [string, string][] = [
  ['instances', 'id'],
  ['instances', 'upstream_instance_id'],
  ['herds', 'patroni_leader_instance_id'],
  ['dns_records', 'match_instance_id'],
  ['lag_samples', 'instance_id'],
  ['agent_conflicts', 'id'],
  ['operations', 'id'],
  ['operation_targets', 'id'],
  ['operation_targets', 'operation_id'],
  ['operation_targets', 'instance_id'],
  ['operation_steps', 'id'],
  ['operation_steps', 'target_id'],
  ['operation_waves', 'id'],
  ['operation_waves', 'operation_id'],
  ['herd_leases', 'target_id'],
  ['dr_drills', 'id'],
  ['dr_drills', 'operation_id'],
  ['rule_runs', 'id'],
  ['rule_runs', 'retry_of'],
  ['rule_runs', 'operation_id'],
  ['notification_events', 'operation_id'],
  ['notification_events', 'rule_run_id'],
];
const SEQUENCES = [
  'instances',
  'agent_conflicts',
  'operations',
  'operation_targets',
  'operation_steps',
  'operation_waves',
  'dr_drills',
  'rule_runs',
];

let adminUrl = '';
let url = '';
let dir = '';
const name = `t_mig_${process.pid}`;
const q = <R extends Record<string, unknown>>(text: string, values: unknown[] = []) => query<R>(url, text, values);

beforeAll(async () => {
  adminUrl = readLab(inject('labFile')).database.adminUrl;
  await query(adminUrl, `CREATE DATABASE ${name}`);
  url = adminUrl.replace(/\/postgres$/, `/${name}`);
  // The migrations up to the one before: the database as a deployment of that version has it.
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgherd-migrations-'));
  cpSync(MIGRATIONS_DIR, dir, { recursive: true });
  const journalFile = path.join(dir, 'meta', '_journal.json');
  const journal = JSON.parse(readFileSync(journalFile, 'utf8')) as { entries: { idx: number; tag: string }[] };
  const last = journal.entries.findIndex((e) => e.tag === BEFORE);
  expect(last).toBeGreaterThan(0);
  writeFileSync(journalFile, JSON.stringify({ ...journal, entries: journal.entries.slice(0, last + 1) }));
  const { db, pool } = createDb(url, 1);
  try {
    await migrate(db, { migrationsFolder: dir });
  } finally {
    await pool.end();
  }
});
afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (adminUrl) await query(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
});

describe('migration 0051 (bigint ids)', () => {
  it('keeps every row and reference, and lets the sequences go past 2^31', async () => {
    // An inventory and its history as integer ids had them, the instances' sequence near its end.
    await q(`
      INSERT INTO environments (id, name) VALUES (1, 'prod');
      INSERT INTO herds (id, environment_id, name, system_identifier) VALUES (1, 1, 'orders', '7000');
      INSERT INTO servers (id, hostname, environment_id) VALUES (1, 'db-1', 1), (2, 'db-2', 1);
      SELECT setval('instances_id_seq', 2147483640);
      INSERT INTO instances (herd_id, server_id, port, role) VALUES (1, 1, 5432, 'primary');
      INSERT INTO instances (herd_id, server_id, port, role, upstream_instance_id) VALUES (1, 2, 5432, 'replica', 2147483641);
      UPDATE herds SET patroni_leader_instance_id = 2147483641;
      INSERT INTO dns_records (herd_id, name, zone, match, match_instance_id) VALUES (1, 'w.example.com', 'example.com', 'instance', 2147483641);
      INSERT INTO lag_samples (instance_id, herd_id, at, role, state) VALUES (2147483642, 1, now(), 'replica', 'running');
      INSERT INTO agent_conflicts (server_id, port, system_identifier, herd_id) VALUES (2, 5433, '7001', 1);
      INSERT INTO operations (id, action, plan_digest, requested_by_name, gate_excused, waves) VALUES (7, 'reload', 'x', 't', '{2147483642}', '{}');
      INSERT INTO operation_targets (id, operation_id, instance_id, herd_id, label) VALUES (70, 7, 2147483642, 1, 'db-2:5432');
      INSERT INTO operation_steps (target_id, seq, name) VALUES (70, 1, 'reload');
      INSERT INTO operation_waves (operation_id, wave, targets) VALUES (7, 1, 1);
      INSERT INTO herd_leases (herd_id, target_id, holder, expires_at) VALUES (1, 70, 'w', now());
      INSERT INTO dr_drills (herd_id, operation_id, primary_label, candidate_label, candidate_site, started_at, acknowledged, lost)
        VALUES (1, 7, 'a', 'b', 's', now(), 1, 0);
      INSERT INTO rules (id, name, owner_name, action, scope, schedule) VALUES (3, 'r', 't', 'reload', '{}', '{}');
      INSERT INTO rule_runs (id, rule_id, kind, fire_key, due_at, operation_id) VALUES (30, 3, 'schedule', 'a', now(), 7);
      INSERT INTO rule_runs (id, rule_id, kind, fire_key, due_at, retry_of) VALUES (31, 3, 'retry', 'b', now(), 30);
      INSERT INTO notification_events (kind, operation_id, rule_run_id) VALUES ('run.ended', 7, 31);
    `);
    const snapshot = async () => ({
      instances: await q('SELECT id, upstream_instance_id FROM instances ORDER BY id'),
      herds: await q('SELECT patroni_leader_instance_id FROM herds'),
      dns: await q('SELECT match_instance_id FROM dns_records'),
      lag: await q('SELECT instance_id FROM lag_samples'),
      ops: await q('SELECT id, gate_excused FROM operations'),
      targets: await q('SELECT id, operation_id, instance_id FROM operation_targets'),
      steps: await q('SELECT id, target_id FROM operation_steps'),
      waves: await q('SELECT id, operation_id FROM operation_waves'),
      leases: await q('SELECT target_id FROM herd_leases'),
      drills: await q('SELECT id, operation_id FROM dr_drills'),
      runs: await q('SELECT id, retry_of, operation_id FROM rule_runs ORDER BY id'),
      events: await q('SELECT operation_id, rule_run_id FROM notification_events'),
      conflicts: await q('SELECT id FROM agent_conflicts'),
    });
    // Compared as text: integer and bigint values read back alike.
    const before = JSON.stringify(await snapshot());

    await migrateDatabase(url);

    expect(JSON.stringify(await snapshot())).toBe(before);
    for (const [table, column] of WIDENED) {
      const [c] = await q<{ t: string }>(
        'SELECT data_type AS t FROM information_schema.columns WHERE table_name = $1 AND column_name = $2',
        [table, column],
      );
      expect(c?.t, `${table}.${column}`).toBe('bigint');
    }
    const [excused] = await q<{ t: string }>(
      "SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'operations'::regclass AND attname = 'gate_excused'",
    );
    expect(excused!.t).toBe('bigint[]');
    for (const table of SEQUENCES) {
      const [s] = await q<{ t: string; max: string }>(
        'SELECT data_type AS t, maximum_value AS max FROM information_schema.sequences WHERE sequence_name = $1',
        [`${table}_id_seq`],
      );
      expect([s?.t, s?.max], table).toEqual(['bigint', '9223372036854775807']);
    }
    // The instances' sequence goes on from where it was, past 2^31, and such ids are referred to.
    await q(`
      INSERT INTO instances (herd_id, server_id, port, role) SELECT 1, 1, 5433 + g, 'replica' FROM generate_series(0, 9) g;
      UPDATE instances SET upstream_instance_id = (SELECT max(id) FROM instances) WHERE id = 2147483642;
      INSERT INTO operation_targets (operation_id, instance_id, herd_id, label) SELECT 7, max(id), 1, 'past' FROM instances;`);
    const ids = (await q<{ id: string }>('SELECT id::text FROM instances ORDER BY id')).map((r) => r.id);
    expect(ids.slice(-6)).toEqual(['2147483647', '2147483648', '2147483649', '2147483650', '2147483651', '2147483652']);
    expect((await q<{ n: string }>('SELECT count(*)::text AS n FROM operation_targets WHERE instance_id > 2147483647'))[0]!.n).toBe('1');
  });
});
