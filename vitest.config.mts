import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const alias = { '@': fileURLToPath(new URL('.', import.meta.url)).replace(/\/$/, '') };

// Two projects: `unit` needs nothing but Node (no lab, runs first, in seconds); `integration` runs
// against one shared lab (pgherd's Postgres, Redis, the sandbox fleet), each file in its own
// database cloned from a migrated template.
export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: 'unit',
          include: ['{lib,db,jobs,app,components}/**/*.test.ts'],
          exclude: ['**/*.int.test.ts', '**/node_modules/**'],
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'integration',
          include: ['{lib,db,jobs,app,components}/**/*.int.test.ts'],
          globalSetup: ['./lib/testing/global-setup.ts'],
          setupFiles: ['./lib/testing/setup-env.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: true,
          maxWorkers: 3,
        },
      },
    ],
  },
});
