import { describe, expect, it } from 'vitest';
import { SYSTEM_ACCESS, type Access } from '@/lib/engine/access';
import type { Role } from '@/db/types';
import { appGroups, appList } from './app-list';
import { adminModels } from './registry';

const bound = (roles: Record<number, Role>): Access => ({
  userId: 7,
  username: 'someone',
  superuser: false,
  global: null,
  byEnvironment: new Map(Object.entries(roles).map(([id, r]) => [Number(id), r])),
});
const labels = (access: Access) => Object.fromEntries(appList(access).map((g) => [g.name, g.links.map((l) => l.label)]));
const adds = (access: Access) =>
  appList(access)
    .flatMap((g) => g.links)
    .filter((l) => l.addHref)
    .map((l) => l.addHref);

describe('appList', () => {
  it('puts every model of the registry in exactly one group', () => {
    const listed = appGroups.flatMap((g) => g.entries).filter((e) => 'table' in e);
    expect([...listed].sort((a, b) => a.name.localeCompare(b.name))).toEqual([...adminModels].sort((a, b) => a.name.localeCompare(b.name)));
  });

  it('shows an admin everywhere every group and link, with Add where objects are typed in', () => {
    expect(labels(SYSTEM_ACCESS)).toEqual({
      fleet: ['Herds', 'Instances', 'Servers', 'Sites', 'Environments', 'DR pairs'],
      operations: ['Operations', 'Approvals', 'Rules', 'Risks', 'DR scorecard', 'Pending maintenance'],
      dns: ['DNS records', 'PgBouncers'],
      backups: ['Backup policies', 'Recoverability'],
      settings: ['Parameter groups', 'Object sets', 'Approval policies', 'Auto-replace policies'],
      access: ['Role bindings', 'API tokens', 'Audit entries'],
      api: ['API reference'],
    });
    expect(adds(SYSTEM_ACCESS)).toEqual(
      expect.arrayContaining(['/admin/herds/add', '/admin/environments/add', '/admin/role-bindings/add', '/admin/dns-records/add']),
    );
    // Records (operations, the audit log) and DR pairs are never added by hand.
    expect(adds(SYSTEM_ACCESS).filter((h) => /operations|audit|\/dr\//.test(h ?? ''))).toEqual([]);
  });

  it('hides from a viewer what needs admin, and every Add', () => {
    const viewer = bound({ 1: 'viewer' });
    expect(labels(viewer).access).toEqual(['API tokens', 'Audit entries']);
    expect(labels(viewer).fleet).toContain('Herds');
    expect(adds(viewer)).toEqual([]);
  });

  it('gives an operator in one environment Add for what operators add, not what admins do', () => {
    const operator = bound({ 1: 'operator', 2: 'viewer' });
    expect(adds(operator)).toContain('/admin/herds/add');
    expect(adds(operator)).not.toContain('/admin/environments/add');
    expect(adds(operator)).not.toContain('/admin/role-bindings/add');
    // Where a herd's WAL goes is an admin's decision.
    expect(adds(operator)).not.toContain('/admin/backup-policies/add');
  });

  it('offers Add of an approval policy to global admins only: an environment\u2019s admin sees them, adds none', () => {
    const envAdmin = bound({ 1: 'admin' });
    expect(labels(envAdmin).settings).toContain('Approval policies');
    expect(adds(envAdmin)).toContain('/admin/backup-policies/add');
    expect(adds(envAdmin)).not.toContain('/admin/approval-policies/add');
    expect(adds(SYSTEM_ACCESS)).toContain('/admin/approval-policies/add');
  });
});
