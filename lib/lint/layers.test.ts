// The layer rule (eslint.layers.mjs) as `npm run lint` runs it: an import that points up a layer, or
// from production code into the lab, is an error; the imports the layers allow are not.
import path from 'node:path';
import { ESLint } from 'eslint';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';
import { layerConfigs } from '../../eslint.layers.mjs';

const root = path.resolve(__dirname, '../..');

// The layer rule alone, without the type-aware rules (a probe file need not exist on disk).
const eslint = new ESLint({
  cwd: root,
  overrideConfigFile: true,
  overrideConfig: [
    { languageOptions: { parser: tseslint.parser } },
    {
      plugins: { 'import-x': importX },
      settings: { 'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })] },
    },
    ...layerConfigs,
  ],
});

async function layerErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'import-x/no-restricted-paths').map((m) => m.message);
}

describe('the layer rule', () => {
  it('fails an adapter that imports the database or the domain', async () => {
    expect(await layerErrors('lib/dns/probe.ts', "import { herds } from '@/db/schema';\nexport const x = herds;\n")).toEqual([
      expect.stringContaining('an adapter takes plain values'),
    ]);
    expect(await layerErrors('lib/ssh/probe.ts', "import { observe } from '../ops/observe';\nexport const x = observe;\n")).toHaveLength(1);
    expect(
      await layerErrors('lib/pgbouncer/probe.ts', "import { shellCommand } from '@/lib/ssh/quote';\nexport const x = shellCommand;\n"),
    ).toEqual([]);
  });

  it('fails lib/ importing the console, components importing pages or server actions, db importing anything of pgherd', async () => {
    expect(
      await layerErrors('lib/ops/probe.ts', "import { ChangeSet } from '@/components/admin/change-set';\nexport const x = ChangeSet;\n"),
    ).toHaveLength(1);
    expect(
      await layerErrors(
        'components/ops/probe.tsx',
        "import { cancelOperationAction } from '@/app/(console)/operations/actions';\nexport const x = cancelOperationAction;\n",
      ),
    ).toHaveLength(1);
    expect(await layerErrors('db/probe.ts', "import { errorText } from '@/lib/ops/errors';\nexport const x = errorText;\n")).toHaveLength(
      1,
    );
    expect(await layerErrors('lib/ops/probe.ts', "import { herds } from '@/db/schema';\nexport const x = herds;\n")).toEqual([]);
  });

  it('keeps the lab and the test helpers out of every production entry point, and lets tests use them', async () => {
    const lab = "import { startLab } from '@/lib/lab/lab';\nexport const x = startLab;\n";
    for (const f of ['app/probe.tsx', 'jobs/probe.ts', 'lib/cli/createsuperuser-probe.ts', 'lib/inventory/probe.ts', 'db/probe.ts']) {
      expect(await layerErrors(f, lab), f).not.toEqual([]);
    }
    expect(await layerErrors('lib/ops/probe.int.test.ts', lab)).toEqual([]);
    expect(await layerErrors('lib/cli/demo.ts', lab)).toEqual([]);
  });

  it('is part of the configuration `npm run lint` uses, as an error', async () => {
    const config = (await new ESLint({ cwd: root }).calculateConfigForFile(path.join(root, 'lib/dns/config.ts'))) as {
      rules: Record<string, unknown[]>;
    };
    expect(config.rules['import-x/no-restricted-paths']?.[0]).toBe(2);
  });
});
