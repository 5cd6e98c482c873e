// docs/configuration.md's tables of settings are the rendering of the declarations: a setting added,
// changed or documented in settings.ts and not rendered fails here.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIGURATION_MD, renderSettingsTables, withSettingsTables } from '@/lib/settings/render-docs';
import { SETTINGS } from '@/lib/settings/settings';

describe('docs/configuration.md', () => {
  const now = readFileSync(CONFIGURATION_MD, 'utf8');

  it('holds the tables rendered from the declarations (node --import tsx lib/settings/render-docs.ts --write)', () => {
    expect(now).toBe(withSettingsTables(now));
  });

  it('lists every declared setting once, with its line of documentation', () => {
    const tables = renderSettingsTables();
    for (const [name, s] of Object.entries(SETTINGS)) {
      expect(tables.split(`| \`${name}\` |`).length - 1, name).toBe(1);
      expect(s.doc.length, name).toBeGreaterThan(10);
    }
  });

  it('keeps a pipe inside a cell from ending it', () => {
    expect(renderSettingsTables()).toContain('"password" \\| "passwordFile"');
  });

  it('says where the markers must be when one is missing', () => {
    expect(() => withSettingsTables('# Configuration\n')).toThrow(/<!-- settings:start -->/);
  });
});
