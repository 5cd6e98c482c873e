// pgherd's layers, lowest first; an import may only point down (docs/architecture.md, "Layers"):
//   db                      the schema and the connection: imports nothing of pgherd's
//   adapters                lib/ssh, lib/dns, lib/pgbouncer, lib/aws, lib/validation: plain values in
//                           and out, nothing of the database or the domain
//   domain                  the rest of lib/: ops, admin, auth, agent, api, inventory, ...
//   app, jobs, components   the console's pages and routes, the worker, the React components;
//                           components never import app (server actions come in as props)
// The lab and the test helpers (lib/lab, lib/testing, lib/bench) are never reachable from what runs
// in production: only tests, benchmarks and the demo/lab/bench commands import them.
const ADAPTERS = ['ssh', 'dns', 'pgbouncer', 'aws', 'validation', 'format'];
// Files that may use the lab: tests, benchmarks, the lab itself and the commands that start it.
export const TEST_SIDE = [
  '**/*.test.ts',
  'e2e/**',
  'lib/lab/**',
  'lib/testing/**',
  'lib/bench/**',
  'lib/cli/demo.ts',
  'lib/cli/lab.ts',
  'lib/cli/bench.ts',
  'vitest.config.mts',
  'playwright.config.ts',
];

const layers = [
  { target: './db', from: ['./lib', './app', './components', './jobs'], message: 'db is the lowest layer.' },
  ...ADAPTERS.map((a) => ({
    target: `./lib/${a}`,
    from: ['./db', './lib', './app', './components', './jobs'],
    except: ADAPTERS.map((b) => `./${b}`),
    message: 'an adapter takes plain values: it knows nothing of the database or the domain.',
  })),
  { target: './lib', from: ['./app', './components', './jobs'], message: 'lib/ is below the console and the worker.' },
  { target: './components', from: ['./app', './jobs'], message: 'components get server actions as props.' },
];
const testOnly = ['./lib/lab', './lib/testing', './lib/bench'].map((from) => ({
  target: './',
  from,
  message: 'the lab and the test helpers are never reachable from production entry points.',
}));

const rule = (zones) => ({ 'import-x/no-restricted-paths': ['error', { zones, basePath: import.meta.dirname }] });

/** Flat-config blocks: production code keeps every layer and never reaches the lab; the lab's own
 *  code keeps the layers; tests may import anything. */
export const layerConfigs = [
  { files: ['**/*.{ts,tsx,mts}'], ignores: TEST_SIDE, rules: rule([...layers, ...testOnly]) },
  { files: TEST_SIDE, ignores: ['**/*.test.ts', 'e2e/**'], rules: rule(layers) },
];
