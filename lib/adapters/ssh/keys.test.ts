import { describe, expect, it } from 'vitest';
import { setting } from '@/lib/settings/settings';
import { keyFor, parseSshKeys } from './keys';

const files: Record<string, string> = { '/k/prod': 'PROD', '/k/stg': 'STG', '/k/default': 'DEFAULT' };
/** PGHERD_SSH_KEYS as the settings read it. */
const keysSetting = (json: string) => setting('PGHERD_SSH_KEYS', { PGHERD_SSH_KEYS: json });
const read = (f: string) => {
  const k = files[f];
  if (k === undefined) throw new Error('ENOENT');
  return Buffer.from(k);
};

describe('SSH keys per environment', () => {
  it('gives each listed environment its own key and the rest the default', () => {
    const keys = parseSshKeys(keysSetting('{"production":"/k/prod","staging":"/k/stg"}'), '/k/default', read);
    expect(keyFor(keys, 'production').toString()).toBe('PROD');
    expect(keyFor(keys, 'staging').toString()).toBe('STG');
    expect(keyFor(keys, 'qa').toString()).toBe('DEFAULT');
    expect(keyFor(keys, null).toString()).toBe('DEFAULT');
  });

  it('refuses an environment with no key when there is no default, naming the settings', () => {
    const keys = parseSshKeys(keysSetting('{"production":"/k/prod"}'), undefined, read);
    expect(() => keyFor(keys, 'staging')).toThrow(/no SSH key for environment "staging": set it in PGHERD_SSH_KEYS, or PGHERD_SSH_KEY/);
  });

  it('says what is wrong with a bad setting: not JSON, a relative path, an unreadable file', () => {
    expect(() => keysSetting('production=/k/prod')).toThrow(/^PGHERD_SSH_KEYS must be .*: the value is not JSON/);
    expect(() => keysSetting('{"production":"k/prod"}')).toThrow(/production: an absolute path/);
    expect(() => parseSshKeys(keysSetting('{"production":"/k/none"}'), undefined, read)).toThrow(/production: cannot read \/k\/none/);
    expect(() => parseSshKeys(null, '/k/none', read)).toThrow(/PGHERD_SSH_KEY: cannot read/);
  });
});
