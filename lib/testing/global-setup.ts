// Vitest global setup: one lab (pgherd's Postgres, Redis, the sandbox fleet) for the whole run,
// and a migrated template database that each test file clones.
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { migrateDatabase } from '@/db/migrate';
import { PROJECT_ROOT, startLab, stopLab } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';

export const TEST_LAB_FILE = path.join(PROJECT_ROOT, '.lab', 'vitest-lab.json');
export const TEMPLATE_DB = 'pgherd_template';

export default async function setup(project: TestProject) {
  const t0 = Date.now();
  const lab = await startLab({ file: TEST_LAB_FILE });
  await query(lab.database.adminUrl, `CREATE DATABASE ${TEMPLATE_DB}`);
  await migrateDatabase(lab.database.adminUrl.replace(/\/postgres$/, `/${TEMPLATE_DB}`));
  console.log(`lab up in ${Date.now() - t0} ms (${lab.instances.length} fleet instances)`);
  project.provide('labFile', TEST_LAB_FILE);
  return async () => {
    await stopLab(TEST_LAB_FILE);
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    labFile: string;
  }
}
