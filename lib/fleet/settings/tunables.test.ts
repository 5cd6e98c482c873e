// The settings a group may set are tunables only: each way a setting can run a program or load code as
// the database's operating system user is refused by name, and the configuration extends the list
// without ever letting a command through.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { settingProblems } from '@/lib/settings/settings';
import { notTunable } from './tunables';
import { wantedSettings } from './wanted';

afterEach(() => vi.unstubAllEnvs());

const ATTACKS = [
  ['archive_cleanup_command', /runs a command as the database's operating system user/],
  ['recovery_end_command', /runs a command/],
  ['ssl_passphrase_command', /runs a command/],
  ['shared_preload_libraries', /loads code into the server/],
  ['session_preload_libraries', /loads code into the server/],
  ['local_preload_libraries', /loads code into the server/],
  ['dynamic_library_path', /loads code into the server/],
  ['jit_provider', /loads code into the server/],
  ['log_directory', /is not among the tunables a group sets/],
  ['log_filename', /is not among the tunables a group sets/],
  ['log_file_mode', /is not among the tunables/],
  ['search_path', /is not among the tunables/],
  ['session_replication_role', /is not among the tunables/],
  ['plperl.on_init', /is not among the tunables/],
  ['ssl_ca_file', /is not among the tunables/],
] as const;

describe('tunables', () => {
  it('refuses every setting that runs a command, loads code or names a file, in any case', () => {
    for (const [name, why] of ATTACKS) expect(notTunable(name), name).toMatch(why);
    expect(notTunable('Archive_Cleanup_Command')).toMatch(/archive_cleanup_command runs a command/);
  });

  it('takes the tunables', () => {
    for (const name of ['work_mem', 'shared_buffers', 'max_connections', 'random_page_cost', 'TimeZone', 'pg_stat_statements.max'])
      expect(notTunable(name), name).toBeNull();
  });

  it('a global admin extends the list in the configuration, never with a command', () => {
    vi.stubEnv('PGHERD_SETTINGS_ALLOWED', 'shared_preload_libraries, Plperl.On_Init');
    expect(notTunable('shared_preload_libraries')).toBeNull();
    expect(notTunable('plperl.on_init')).toBeNull();
    expect(notTunable('dynamic_library_path')).toMatch(/loads code/);
    vi.stubEnv('PGHERD_SETTINGS_ALLOWED', 'work_mem archive_cleanup_command');
    expect(settingProblems(process.env).join('\n')).toMatch(
      /PGHERD_SETTINGS_ALLOWED must be Postgres setting names .*archive_cleanup_command runs a command/,
    );
    vi.stubEnv('PGHERD_SETTINGS_ALLOWED', 'work-mem');
    expect(settingProblems(process.env).join('\n')).toMatch(/"work-mem" is not a setting's name/);
  });

  it('a stored layer that holds one is drift that cannot be applied, the rest of the layer kept', () => {
    const w = wantedSettings({
      environmentGroup: null,
      herdGroup: null,
      herdOverrides: "archive_cleanup_command = 'touch /tmp/owned'\nwork_mem = '8MB'",
      instanceGroup: null,
      host: { memoryMb: null, cpus: null },
    });
    expect(w.get('archive_cleanup_command')).toMatchObject({ value: null, why: expect.stringMatching(/runs a command/) });
    expect(w.get('work_mem')).toMatchObject({ value: '8MB' });
  });
});
