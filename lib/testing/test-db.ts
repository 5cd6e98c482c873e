// A fresh, migrated pgherd database for one test file, cloned from the global setup's template.
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { createDb, type Db } from '@/db/client';
import { readLab, type LabInfo } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';

export interface TestDb {
  db: Db;
  url: string;
  lab: LabInfo;
  close: () => Promise<void>;
}

export async function freshDatabase(): Promise<TestDb> {
  const lab = readLab(inject('labFile'));
  const name = `t_${randomBytes(6).toString('hex')}`;
  await query(lab.database.adminUrl, `CREATE DATABASE ${name} TEMPLATE pgherd_template`);
  const url = lab.database.adminUrl.replace(/\/postgres$/, `/${name}`);
  const { db, pool } = createDb(url, 4);
  return {
    db,
    url,
    lab,
    close: async () => {
      await pool.end();
      await query(lab.database.adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/**
 * The lab herds that the operations tests stop, restart, promote and re-point while other test
 * files run: assertions about the lab's untouched topology leave these out.
 */
export const OPS_TEST_HERDS = ['production/identity', 'production/orders', 'staging/identity'];
export const isOpsTestHerd = (environment: string, herd: string) => OPS_TEST_HERDS.includes(`${environment}/${herd}`);
