import type { NextConfig } from 'next';

const config: NextConfig = {
  poweredByHeader: false,
  // `npm run typecheck` and `npm run lint` check every file before a build; the build need not again.
  typescript: { ignoreBuildErrors: true },
  // forbidden(): a refused page answers 403 (the console's forbidden page says what is missing).
  experimental: { authInterrupts: true },
  // Node packages with native addons or worker threads are loaded by Node at run time, not bundled.
  serverExternalPackages: ['pg', 'ssh2', 'cpu-features', 'bullmq', 'ioredis', 'prom-client'],
};

export default config;
