// ESLint: typescript-eslint's strict type-checked rules, React's hook rules, and pgherd's layers
// (eslint.layers.mjs). Formatting is Prettier's, so eslint-config-prettier turns off what it decides.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import reactHooks from 'eslint-plugin-react-hooks';
import prettier from 'eslint-config-prettier';
import { layerConfigs, shortPlans, TEST_SIDE } from './eslint.layers.mjs';

export default tseslint.config(
  { ignores: ['.next/**', '.lab/**', 'dist/**', 'node_modules/**', 'test-results/**', 'db/migrations/**', 'next-env.d.ts'] },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
  },
  {
    rules: {
      // Numbers and booleans read well in messages; objects, nullish values and unknowns do not.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowAny: false, allowNullish: false, allowRegExp: false, allowNever: false },
      ],
      // `onClick={() => setOpen(false)}` is not confusing, and `return void ctx.note(...)` is the house
      // idiom for "say why and stop here" in a step.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true, ignoreVoidOperator: true }],
      '@typescript-eslint/no-meaningless-void-operator': 'off',
      // Input validation matches control characters on purpose (lib/adapters/validation/text.ts, pg-access).
      'no-control-regex': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Tests read JSON answers and rows they have just asserted exist: `!` and `any` are their idiom.
    files: TEST_SIDE,
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/require-await': 'off',
    },
  },
  shortPlans,
  {
    files: ['**/*.tsx'],
    plugins: { 'react-hooks': reactHooks },
    rules: reactHooks.configs.recommended.rules,
  },
  {
    plugins: { 'import-x': importX },
    settings: {
      // import-x reads each imported file (no-cycle follows them) with the TypeScript parser.
      'import-x/extensions': ['.ts', '.tsx', '.mts'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.tsx', '.mts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
  },
  ...layerConfigs,
  { files: ['**/*.mjs', '**/*.js'], extends: [tseslint.configs.disableTypeChecked] },
  prettier,
);
