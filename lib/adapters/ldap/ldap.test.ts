// The user filter as slapd gets it: a username fills its placeholder as data, whatever it holds.
import { describe, expect, it } from 'vitest';
import { fillFilter } from './ldap';

describe('fillFilter', () => {
  it('keeps the filter\u2019s shape when the username holds replacement patterns ($\u2019, $&, $`)', () => {
    const template = '(&(objectClass=inetOrgPerson)(uid={username}))';
    expect(fillFilter(template, { username: "alice$'" })).toBe("(&(objectClass=inetOrgPerson)(uid=alice$'))");
    expect(fillFilter(template, { username: 'alice$&' })).toBe('(&(objectClass=inetOrgPerson)(uid=alice$&))');
    expect(fillFilter(template, { username: '$`*)(uid=*' })).toBe('(&(objectClass=inetOrgPerson)(uid=$`\\2a\\29\\28uid=\\2a))');
  });

  it('fills every placeholder once, and a value that holds another placeholder stays as it is', () => {
    expect(fillFilter('(|(member={userDN})(memberUid={username}))', { userDN: 'uid={username},ou=people', username: "b$'" })).toBe(
      "(|(member=uid={username},ou=people)(memberUid=b$'))",
    );
    expect(fillFilter('(uid={username})(x={other})', { username: 'a' })).toBe('(uid=a)(x={other})');
  });
});
