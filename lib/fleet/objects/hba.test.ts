import { describe, expect, it } from 'vitest';
import { declarationOf } from './declaration';
import { renderHba, shutOut, splitCidr, type Essential } from './hba';

const lines = (text: string, ctx = { members: ['127.0.0.2', '127.0.0.3'], pgherd: '127.0.0.1', poolers: ['127.0.0.9'] }) =>
  renderHba(
    declarationOf({ environmentSet: { id: 1, name: 'base', version: 1, declaration: text }, herdSet: null, herdOverrides: '' }).declaration
      .hba,
    ctx,
  );

const pgherd: Essential = { who: 'pgherd', local: false, address: '127.0.0.1', ssl: true, user: 'pgherd', database: 'postgres' };
const replica: Essential = {
  who: 'the replication of 127.0.0.3',
  local: false,
  address: '127.0.0.3',
  ssl: false,
  user: 'replicator',
  database: 'replication',
};
const pooler: Essential = { who: 'the pooler on 127.0.0.9', local: false, address: '127.0.0.9', ssl: null, user: null, database: 'all' };

describe('access rules', () => {
  it('fill their placeholders with the herd’s addresses, as pg_hba_file_rules will say them', () => {
    const r = lines('hba host replication replicator {members} trust\nhba hostssl all pgherd {pgherd} scram-sha-256');
    expect(r.errors).toEqual([]);
    expect(r.lines.map((l) => l.text)).toEqual([
      'host replication replicator 127.0.0.2/32 trust',
      'host replication replicator 127.0.0.3/32 trust',
      'hostssl all pgherd 127.0.0.1/32 scram-sha-256',
    ]);
    expect(r.lines[0]).toMatchObject({ address: '127.0.0.2', netmask: '255.255.255.255' });
    expect(splitCidr('10.0.0.0/8')).toEqual({ address: '10.0.0.0', netmask: '255.0.0.0' });
    expect(splitCidr('fd00:0:0::1/64')).toEqual({ address: 'fd00::1', netmask: 'ffff:ffff:ffff:ffff::' });
  });

  it('name the line that would shut out pgherd, a replica or the pooler, and none when all get in', () => {
    const ok = lines(
      'hba hostssl all pgherd {pgherd} scram-sha-256\nhba host replication all {members} trust\nhba host all all {poolers} scram-sha-256',
    );
    expect(shutOut(ok.lines, [pgherd, replica, pooler])).toEqual([]);
    const bad = lines('hba host all all 127.0.0.0/8 reject\nhba hostssl all pgherd {pgherd} scram-sha-256');
    expect(shutOut(bad.lines, [pgherd])).toEqual(['hba host all all 127.0.0.0/8 reject (set base v1 (environment)) would shut out pgherd']);
    expect(shutOut(lines('hba host replication all 127.0.0.2/32 trust').lines, [replica])).toEqual([
      'no line lets in the replication of 127.0.0.3',
    ]);
    // `all` is no replication line: a replica needs one that names replication.
    expect(shutOut(lines('hba host all all 0.0.0.0/0 trust').lines, [replica])).toEqual(['no line lets in the replication of 127.0.0.3']);
    expect(shutOut(lines('hba host all all {poolers} reject\nhba host all all 0.0.0.0/0 trust').lines, [pooler])[0]).toMatch(
      /would shut out the pooler/,
    );
    // A reject for one named role does not shut out a pooler whose users are not known.
    expect(shutOut(lines('hba host all pgherd 0.0.0.0/0 reject\nhba host all all 127.0.0.0/8 trust').lines, [pooler])).toEqual([]);
    // samehost, samenet: a reject there may match; an allow there is not counted on.
    expect(shutOut(lines('hba host all all samenet reject\nhba host all all 0.0.0.0/0 trust').lines, [pooler])[0]).toMatch(
      /samenet reject .* would shut out/,
    );
    expect(shutOut(lines('hba host all all samehost trust').lines, [pooler])).toEqual(['no line lets in the pooler on 127.0.0.9']);
    // A method pgherd cannot log in by shuts it out as surely as a reject.
    expect(
      shutOut(lines('hba host all all 0.0.0.0/0 ldap ldapserver=x').lines, [
        { ...pgherd, methods: ['scram-sha-256', 'md5', 'cert', 'trust'] },
      ])[0],
    ).toMatch(/it logs in by scram-sha-256, md5, cert, trust, not ldap/);
    // +group matches a member of a member.
    expect(
      shutOut(lines('hba host all +ops 0.0.0.0/0 reject\nhba host all all 0.0.0.0/0 trust').lines, [
        { ...pgherd, memberOf: ['dba', 'ops'] },
      ])[0],
    ).toMatch(/would shut out pgherd/);
    // hostnossl: pgherd comes over TLS, so this line is not its.
    expect(shutOut(lines('hba hostnossl all all 0.0.0.0/0 trust').lines, [pgherd])).toEqual(['no line lets in pgherd']);
  });
});
