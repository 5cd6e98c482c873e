import { defineConfig } from '@playwright/test';
import { setting } from '@/lib/settings/settings';

// Debian's Chromium, never a downloaded browser (see docs/testing.md).
export const CHROMIUM = setting('PGHERD_CHROMIUM');

export default defineConfig({
  testDir: './e2e',
  globalSetup: './e2e/global-setup.ts',
  globalTeardown: './e2e/global-teardown.ts',
  // The tests walk one shared console and change its data: one at a time, in order.
  workers: 1,
  fullyParallel: false,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [['list']],
  // The directory-down test stops the lab's slapd: it runs once every other test has.
  projects: [
    { name: 'console', testIgnore: /directory-down\.spec\.ts$/ },
    { name: 'directory down', testMatch: /directory-down\.spec\.ts$/, dependencies: ['console'] },
  ],
  use: {
    headless: true,
    viewport: { width: 1400, height: 900 },
    trace: 'off',
    launchOptions: {
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
});
