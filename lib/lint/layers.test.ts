// The floor rule (eslint.layers.mjs) as `npm run lint` runs it: an import that points up a floor, one
// that closes a cycle, or one from production code into the lab, is an error; what the floors allow is not.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ESLint } from 'eslint';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';
import { ACTION_FAMILIES, cycleConfigs, floorConfigs, shortPlans } from '../../eslint.layers.mjs';
import { folderCycles, folderEdges } from './import-map';

const root = path.resolve(__dirname, '../..');

// Each rule alone, without the type-aware rules (a probe file need not exist on disk; no-cycle reads every file an
// import leads to, which the floor probes need not).
const linter = (configs: typeof floorConfigs) =>
  new ESLint({
    cwd: root,
    overrideConfigFile: true,
    overrideConfig: [
      { languageOptions: { parser: tseslint.parser } },
      {
        plugins: { 'import-x': importX },
        settings: {
          // import-x reads each imported file (no-cycle follows them) with the TypeScript parser.
          'import-x/extensions': ['.ts', '.tsx', '.mts'],
          'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.tsx', '.mts'] },
          'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
        },
      },
      ...configs,
    ],
  });
const floors = linter(floorConfigs);
const cycles = linter(cycleConfigs);

async function ruleErrors(file: string, code: string, rule: string): Promise<string[]> {
  const [result] = await (rule === 'import-x/no-cycle' ? cycles : floors).lintText(code, { filePath: path.join(root, file) });
  return (result?.messages ?? []).filter((m) => m.ruleId === rule).map((m) => m.message);
}
const layerErrors = (file: string, code: string) => ruleErrors(file, code, 'import-x/no-restricted-paths');

describe('the floor rule', () => {
  it('fails an adapter that imports the database or the domain', async () => {
    expect(await layerErrors('lib/adapters/dns/probe.ts', "import { herds } from '@/db/schema';\nexport const x = herds;\n")).toEqual([
      expect.stringContaining('an adapter takes plain values'),
    ]);
    expect(
      await layerErrors('lib/adapters/ssh/probe.ts', "import { observe } from '@/lib/fleet/observe';\nexport const x = observe;\n"),
    ).toHaveLength(1);
    expect(
      await layerErrors(
        'lib/adapters/pgbouncer/probe.ts',
        "import { shellCommand } from '@/lib/adapters/ssh/quote';\nexport const x = shellCommand;\n",
      ),
    ).toEqual([]);
  });

  it('fails each floor importing the one above it, and lets it import the ones below', async () => {
    const up: [string, string, string][] = [
      ['lib/fleet/probe.ts', 'executeTarget', '@/lib/engine/execute-target'],
      ['lib/engine/probe.ts', 'switchoverAction', '@/lib/actions/topology/switchover.action'],
      ['lib/engine/probe.ts', 'getAction', '@/lib/actions/registry'],
      ['lib/actions/probe.ts', 'createWindow', '@/lib/features/rules/maintenance-windows'],
      ['lib/features/probe.ts', 'startWorker', '@/jobs/start-worker'],
      ['lib/features/probe.ts', 'webQueue', '@/lib/entry/web/web-queue'],
    ];
    for (const [file, name, from] of up) {
      expect(await layerErrors(file, `import { ${name} } from '${from}';\nexport const x = ${name};\n`), `${file} -> ${from}`).toEqual([
        expect.stringMatching(/may import only the floors at or below it|below the console and the worker/),
      ]);
    }
    const down: [string, string, string][] = [
      ['lib/fleet/probe.ts', 'shellCommand', '@/lib/adapters/ssh/quote'],
      ['lib/engine/probe.ts', 'observe', '@/lib/fleet/observe'],
      ['lib/actions/probe.ts', 'pipeline', '@/lib/engine/pipeline'],
      ['lib/features/probe.ts', 'getAction', '@/lib/actions/registry'],
      ['lib/entry/probe.ts', 'createWindow', '@/lib/features/rules/maintenance-windows'],
    ];
    for (const [file, name, from] of down) {
      expect(await layerErrors(file, `import { ${name} } from '${from}';\nexport const x = ${name};\n`), `${file} -> ${from}`).toEqual([]);
    }
  });

  it('keeps the agent that ships to hosts apart from the server', async () => {
    expect(await layerErrors('lib/agent/probe.ts', "import { observe } from '@/lib/fleet/observe';\nexport const x = observe;\n")).toEqual([
      expect.stringContaining('imports nothing of the server'),
    ]);
    expect(await layerErrors('lib/agent/probe.ts', "import { herds } from '@/db/schema';\nexport const x = herds;\n")).toHaveLength(1);
    expect(
      await layerErrors(
        'lib/agent/probe.ts',
        "import { isPlainName } from '@/lib/adapters/validation/text';\nexport const x = isPlainName;\n",
      ),
    ).toEqual([]);
    // The server reads the agent's report format.
    expect(
      await layerErrors(
        'lib/features/agents/probe.ts',
        "import { MAX_INSTANCES } from '@/lib/agent/report';\nexport const x = MAX_INSTANCES;\n",
      ),
    ).toEqual([]);
  });

  it('fails lib/ importing the console, components importing pages, server actions or the database, db importing pgherd but the settings', async () => {
    expect(
      await layerErrors('lib/engine/probe.ts', "import { ChangeSet } from '@/components/admin/change-set';\nexport const x = ChangeSet;\n"),
    ).toHaveLength(1);
    expect(
      await layerErrors(
        'components/ops/probe.tsx',
        "import { cancelOperationAction } from '@/app/(console)/operations/actions';\nexport const x = cancelOperationAction;\n",
      ),
    ).toHaveLength(1);
    expect(await layerErrors('components/ops/probe.tsx', "import { getDb } from '@/db/client';\nexport const x = getDb;\n")).toEqual([
      expect.stringContaining('components never import the database'),
    ]);
    expect(
      await layerErrors('db/probe.ts', "import { errorText } from '@/lib/engine/errors';\nexport const x = errorText;\n"),
    ).toHaveLength(1);
    // Of lib/, the database's client reads only the settings (its pool's size), not the other adapters.
    expect(await layerErrors('db/probe.ts', "import { setting } from '@/lib/settings/settings';\nexport const x = setting;\n")).toEqual([]);
    expect(
      await layerErrors('db/probe.ts', "import { shellCommand } from '@/lib/adapters/ssh/quote';\nexport const x = shellCommand;\n"),
    ).toHaveLength(1);
    expect(await layerErrors('lib/engine/probe.ts', "import { herds } from '@/db/schema';\nexport const x = herds;\n")).toEqual([]);
    // The settings are below everything: the database's client reads its pool's size there, and they read nothing of pgherd's.
    expect(await layerErrors('db/probe.ts', "import { setting } from '@/lib/settings/settings';\nexport const x = setting;\n")).toEqual([]);
    expect(
      await layerErrors('db/probe.ts', "import { shellCommand } from '@/lib/adapters/ssh/quote';\nexport const x = shellCommand;\n"),
    ).toHaveLength(1);
    expect(await layerErrors('lib/settings/probe.ts', "import { getDb } from '@/db/client';\nexport const x = getDb;\n")).toEqual([
      expect.stringContaining('the settings are the lowest floor'),
    ]);
    expect(
      await layerErrors('lib/adapters/probe.ts', "import { setting } from '@/lib/settings/settings';\nexport const x = setting;\n"),
    ).toEqual([]);
  });

  it('keeps the lab and the test helpers out of every production entry point, and lets tests use them', async () => {
    const lab = "import { startLab } from '@/lib/lab/lab';\nexport const x = startLab;\n";
    for (const f of ['app/probe.tsx', 'jobs/probe.ts', 'lib/entry/cli/createsuperuser-probe.ts', 'lib/fleet/probe.ts', 'db/probe.ts']) {
      expect(await layerErrors(f, lab), f).not.toEqual([]);
    }
    expect(await layerErrors('lib/engine/probe.int.test.ts', lab)).toEqual([]);
    expect(await layerErrors('lib/entry/cli/demo.ts', lab)).toEqual([]);
  });

  it('fails an import cycle, however long, and not a chain', async () => {
    const dir = mkdtempSync(path.join(root, 'lib/features/cycle-probe-'));
    try {
      const rel = path.relative(root, dir);
      writeFileSync(path.join(dir, 'a.ts'), "import { b } from './b';\nexport const a = () => b();\n");
      writeFileSync(path.join(dir, 'b.ts'), "import { c } from './c';\nexport const b = () => c();\n");
      writeFileSync(path.join(dir, 'c.ts'), "import { a } from './a';\nexport const c = (): number => (a ? 1 : 0);\n");
      const cycle = await ruleErrors(`${rel}/a.ts`, readFileSync(path.join(dir, 'a.ts'), 'utf8'), 'import-x/no-cycle');
      expect(cycle).toEqual([expect.stringContaining('Dependency cycle')]);
      writeFileSync(path.join(dir, 'c.ts'), 'export const c = (): number => 1;\n');
      expect(await ruleErrors(`${rel}/a.ts`, readFileSync(path.join(dir, 'a.ts'), 'utf8'), 'import-x/no-cycle')).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is part of the configuration `npm run lint` uses, as an error', async () => {
    const config = (await new ESLint({ cwd: root }).calculateConfigForFile(path.join(root, 'lib/adapters/dns/config.ts'))) as {
      rules: Record<string, unknown[]>;
    };
    expect(config.rules['import-x/no-restricted-paths']?.[0]).toBe(2);
    expect(config.rules['import-x/no-cycle']?.[0]).toBe(2);
    const actions = (await new ESLint({ cwd: root }).calculateConfigForFile(path.join(root, 'lib/actions/grow/retire.action.ts'))) as {
      rules: Record<string, unknown[]>;
    };
    expect(actions.rules['max-lines-per-function']).toEqual([2, expect.objectContaining({ max: 80 })]);
  });
});

describe('the rooms of lib/actions', () => {
  // A probe's import must name a module that exists: one that resolves to nothing is no error, and would pass for the wrong reason.
  const probe = async (file: string, name: string, from: string) => {
    expect(
      existsSync(path.join(root, `${from.replace(/^@\//, '')}.ts`)) || existsSync(path.join(root, from.replace(/^@\//, ''), 'index.ts')),
      from,
    ).toBe(true);
    return layerErrors(file, `import { ${name} } from '${from}';\nexport const x = ${name};\n`);
  };

  it('knows every family folder', () => {
    expect(ACTION_FAMILIES).toEqual(['backups', 'cloud', 'control', 'grow', 'maintenance', 'objects', 'parameters', 'topology', 'upgrade']);
  });

  it('fails a family importing another family or the registry, and steps/ or drivers/ importing a family', async () => {
    const wrong: [string, string, string, RegExp][] = [
      ['lib/actions/grow/probe.ts', 'backupAction', '@/lib/actions/backups/backup.action', /never another family/],
      ['lib/actions/upgrade/probe.ts', 'switchoverAction', '@/lib/actions/topology/switchover.action', /never another family/],
      ['lib/actions/control/probe.ts', 'getAction', '@/lib/actions/registry', /never another family nor the registry/],
      ['lib/actions/drivers/probe.ts', 'addReplicaAction', '@/lib/actions/grow/add-replica.action', /never an action family/],
      ['lib/actions/steps/probe.ts', 'restartAction', '@/lib/actions/control/restart.action', /imports nothing else of lib\/actions/],
      ['lib/actions/steps/probe.ts', 'driverOf', '@/lib/actions/drivers', /imports nothing else of lib\/actions/],
    ];
    for (const [file, name, from, says] of wrong)
      expect(await probe(file, name, from), `${file} -> ${from}`).toEqual([expect.stringMatching(says)]);
  });

  it('lets a family import its own folder, steps/ and drivers/; drivers import steps/', async () => {
    const right: [string, string, string][] = [
      ['lib/actions/grow/probe.ts', 'retireAction', '@/lib/actions/grow/retire.action'],
      ['lib/actions/grow/probe.ts', 'planLaunch', '@/lib/actions/steps/launch'],
      ['lib/actions/topology/probe.ts', 'driverOf', '@/lib/actions/drivers'],
      ['lib/actions/drivers/probe.ts', 'sshControlStep', '@/lib/actions/steps/control-steps'],
      ['lib/actions/probe.ts', 'restartAction', '@/lib/actions/control/restart.action'],
    ];
    for (const [file, name, from] of right) expect(await probe(file, name, from), `${file} -> ${from}`).toEqual([]);
  });

  it('has no folder cycle: the folders of lib/actions import each other one way', () => {
    // The finder itself: a cycle through three folders is one, a chain is none.
    expect(
      folderCycles([
        ['grow', 'steps'],
        ['steps', 'drivers'],
        ['drivers', 'grow'],
        ['upgrade', 'steps'],
      ]),
    ).toEqual([['drivers', 'grow', 'steps']]);
    expect(
      folderCycles([
        ['grow', 'steps'],
        ['steps', 'drivers'],
        ['upgrade', 'drivers'],
      ]),
    ).toEqual([]);
    const edges = folderEdges('lib/actions');
    expect(edges.length).toBeGreaterThan(20);
    expect(folderCycles(edges)).toEqual([]);
  });
});

describe('plans that read as their pipeline', () => {
  const lengths = linter([shortPlans]);
  const fn = (lines: number) => `export function plan(): number {\n${'  let x = 1;\n'.repeat(lines - 3)}  return 1;\n}\n`;
  const errors = async (file: string, code: string) =>
    ((await lengths.lintText(code, { filePath: path.join(root, file) }))[0]?.messages ?? [])
      .map((m) => m.ruleId)
      .filter((r) => r === 'max-lines-per-function');

  it('fails a function of lib/actions over 80 lines; not one of 80, nor a test or another floor', async () => {
    expect(fn(81).split('\n').length - 1).toBe(81);
    expect(await errors('lib/actions/grow/probe.ts', fn(81))).toEqual(['max-lines-per-function']);
    expect(await errors('lib/actions/steps/probe.ts', fn(81))).toEqual(['max-lines-per-function']);
    expect(await errors('lib/actions/grow/probe.ts', fn(80))).toEqual([]);
    expect(await errors('lib/actions/grow/probe.test.ts', fn(81))).toEqual([]);
    expect(await errors('lib/engine/probe.ts', fn(81))).toEqual([]);
  });
});
