import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { alias: { '@': fileURLToPath(new URL('.', import.meta.url)).replace(/\/$/, '') } },
  test: {
    include: ['{lib,db,jobs,app,components}/**/*.test.ts'],
    globalSetup: ['./lib/testing/global-setup.ts'],
    setupFiles: ['./lib/testing/setup-env.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests share one lab; each file gets its own database cloned from a migrated template.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
