import { describe, expect, it } from 'vitest';
import { keyFor, parseSshKeys } from './keys';

const files: Record<string, string> = { '/k/prod': 'PROD', '/k/stg': 'STG', '/k/default': 'DEFAULT' };
const read = (f: string) => {
  const k = files[f];
  if (k === undefined) throw new Error('ENOENT');
  return Buffer.from(k);
};

describe('SSH keys per environment', () => {
  it('gives each listed environment its own key and the rest the default', () => {
    const keys = parseSshKeys('{"production":"/k/prod","staging":"/k/stg"}', '/k/default', read);
    expect(keyFor(keys, 'production').toString()).toBe('PROD');
    expect(keyFor(keys, 'staging').toString()).toBe('STG');
    expect(keyFor(keys, 'qa').toString()).toBe('DEFAULT');
    expect(keyFor(keys, null).toString()).toBe('DEFAULT');
  });

  it('refuses an environment with no key when there is no default, naming the settings', () => {
    const keys = parseSshKeys('{"production":"/k/prod"}', undefined, read);
    expect(() => keyFor(keys, 'staging')).toThrow(/no SSH key for environment "staging": set it in PGHERD_SSH_KEYS, or PGHERD_SSH_KEY/);
  });

  it('says what is wrong with a bad setting: not JSON, a relative path, an unreadable file', () => {
    expect(() => parseSshKeys('production=/k/prod', undefined, read)).toThrow(/PGHERD_SSH_KEYS is not JSON/);
    expect(() => parseSshKeys('{"production":"k/prod"}', undefined, read)).toThrow(/production: an absolute path/);
    expect(() => parseSshKeys('{"production":"/k/none"}', undefined, read)).toThrow(/production: cannot read \/k\/none/);
    expect(() => parseSshKeys(undefined, '/k/none', read)).toThrow(/PGHERD_SSH_KEY: cannot read/);
  });
});
