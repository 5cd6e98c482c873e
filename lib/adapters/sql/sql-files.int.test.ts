// Every statement in a .sql file of lib/ is handed to Postgres to parse and plan against the migrated
// schema (PREPARE): a misspelt column, a table renamed by a migration or a syntax error fails here,
// not when a worker first runs it.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { sqlFile } from './sql-file';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const files = readdirSync(path.join(ROOT, 'lib'), { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.sql'))
  .map((f) => path.posix.join('lib', f.split(path.sep).join('/')))
  .sort();

let t: TestDb;
let client: pg.Client;
beforeAll(async () => {
  t = await freshDatabase();
  client = new pg.Client({ connectionString: t.url });
  await client.connect();
});
afterAll(async () => {
  await client.end();
  await t.close();
});

describe('the SQL in .sql files', () => {
  it('is found where the modules read it', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'lib/actions/backups/settle-restore-claim.sql',
        'lib/actions/backups/unsettled-launched-instances.sql',
        'lib/actions/backups/unsettled-restore-claims.sql',
        'lib/actions/steps/claim-owed-cleanups.sql',
        'lib/actions/steps/launched-instance.sql',
        'lib/actions/steps/register-launched-server.sql',
        'lib/actions/upgrade/blue-database-facts.sql',
        'lib/engine/active-waves.sql',
        'lib/engine/claim-targets.sql',
        'lib/engine/finish-targets.sql',
        'lib/engine/gate-healthy.sql',
        'lib/engine/insert-operations.sql',
        'lib/engine/insert-targets.sql',
        'lib/features/agents/health-conflicts.sql',
        'lib/features/agents/health-drifted.sql',
        'lib/features/agents/health-foreign-upstreams.sql',
        'lib/features/agents/health-no-primary.sql',
        'lib/features/agents/health-silent.sql',
        'lib/features/agents/health-tags.sql',
        'lib/features/agents/health-two-primaries.sql',
        'lib/features/agents/health-unobserved.sql',
        'lib/features/agents/hold-conflicts.sql',
        'lib/features/agents/ingest.sql',
        'lib/features/agents/patroni-proposals.sql',
        'lib/features/agents/record-builds.sql',
        'lib/features/dr/scorecard.sql',
        'lib/features/rules/notification-events.sql',
        'lib/features/rules/record-due-fires.sql',
        'lib/features/rules/runs-to-put-back.sql',
        'lib/features/rules/settle-rule-runs.sql',
        'lib/features/upgrades/pending-herds.sql',
        'lib/fleet/backups/herd-policies.sql',
        'lib/fleet/claim-due-herds.sql',
        'lib/fleet/fleet-history-samples.sql',
        'lib/fleet/herd-refs.sql',
        'lib/fleet/instance-ref.sql',
        'lib/fleet/raise-no-primary.sql',
        'lib/fleet/sample-lag.sql',
      ]),
    );
  });

  it.each(files)('%s parses and plans against the schema', async (file) => {
    const name = `check_${path.basename(file, '.sql').replace(/\W/g, '_')}`;
    await client.query(`PREPARE ${name} AS ${sqlFile(file)}`);
    await client.query(`DEALLOCATE ${name}`);
  });

  it('fails a statement that names a column the schema does not have', async () => {
    const bad = sqlFile('lib/fleet/instance-ref.sql').replace('i.port,', 'i.no_such_column,');
    await expect(client.query(`PREPARE bad AS ${bad}`)).rejects.toThrow(/no_such_column/);
  });
});
