import type { NextConfig } from 'next';

const config: NextConfig = {
  poweredByHeader: false,
  // pg and drizzle stay server-side Node modules, never bundled into the client.
  serverExternalPackages: ['pg'],
};

export default config;
