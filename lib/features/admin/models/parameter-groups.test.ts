// A group's text, and a herd's overrides (the same schema), hold tunables only: a line that would run a
// command or load code on every member is refused when saved, naming it.
import { describe, expect, it } from 'vitest';
import { settingsText } from './parameter-groups.admin';

describe('settings typed in a group or a herd’s overrides', () => {
  it('refuses a setting that runs a command or loads code, naming it, and takes tunables', () => {
    const r = settingsText.safeParse("work_mem = '8MB'\narchive_cleanup_command = 'touch /tmp/owned'\nshared_preload_libraries = 'x'");
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.message)).toEqual([
      "archive_cleanup_command runs a command as the database's operating system user: no group sets it.",
      'shared_preload_libraries loads code into the server: not among the tunables a group sets (a global admin may allow it in PGHERD_SETTINGS_ALLOWED).',
    ]);
    expect(settingsText.parse('Work_Mem = 8MB\nrandom_page_cost = 1.1')).toBe("random_page_cost = '1.1'\nwork_mem = '8MB'");
  });
});
