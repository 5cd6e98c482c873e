import { eq, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import { environments, herds, instanceCounts, instanceRole, instanceState, instances, servers } from '@/db/schema';
import { defineAdmin, type Model } from '../define-admin';
import { instanceRules } from '../environment-checks';
import { patroniUrlRules } from '../patroni-url-checks';
import { f, tableForm } from '../form-fields';
import { herdsAdmin } from './herds.admin';
import { serversAdmin } from './servers.admin';
import { parameterGroupsAdmin } from './parameter-groups.admin';
import { actions } from '@/lib/actions/registry';
import { isHerdAction } from '@/lib/engine/define-action';

const upstream = alias(instances, 'upstream');
const upstreamServer = alias(servers, 'upstream_server');

// Typed: its form refers to instances themselves (a replica's upstream).
export const instancesAdmin: Model = defineAdmin({
  name: 'instances',
  label: 'instance',
  labelPlural: 'instances',
  table: instances,
  id: instances.id,
  joins: [
    { table: herds, on: eq(instances.herdId, herds.id) },
    { table: environments, on: eq(herds.environmentId, environments.id) },
    { table: servers, on: eq(instances.serverId, servers.id) },
    { table: upstream, on: eq(instances.upstreamInstanceId, upstream.id), type: 'left', displayOnly: true },
    { table: upstreamServer, on: eq(upstream.serverId, upstreamServer.id), type: 'left', displayOnly: true },
  ],
  labelSql: sql`${servers.hostname} || ':' || ${instances.port}`,
  // The instance's own copies of its herd's environment and its server's site (kept by the database):
  // filters and the user's scope without a join.
  environmentSql: instances.environmentId,
  sameEnvironment: ['serverId', 'upstreamInstanceId'],
  validate: async (tx, id, _values, before) => (await instanceRules(tx, id)) ?? (await patroniUrlRules(tx, id, before)),
  panels: [{ kind: 'lag-history', path: '/api/v1/instances' }],
  // The refresher writes what it observes; what is set by hand is what pgherd keeps (fenced, needs
  // rebuild) or trusts when choosing an old primary: undoing a fence, or calling a replica the primary, is an admin's act.
  // The Patroni REST address is where pgherd sends the environment's Patroni credentials.
  adminFields: ['role', 'state', 'patroniUrl', 'parameterGroupId'],
  // On a new instance as on a change: an operator adds one as the refresher will find it (role unknown,
  // stopped), with no Patroni address and its herd's settings.
  adminOnAdd: ['role', 'state', 'patroniUrl', 'parameterGroupId'],
  fields: {
    server: { label: 'Server', sql: servers.hostname, link: 'self' },
    port: { label: 'Port', sql: instances.port, format: 'number' },
    herdId: { label: 'Herd id', sql: instances.herdId, sortable: false },
    herd: { label: 'Herd', sql: herds.name, link: { model: 'herds', idField: 'herdId' } },
    environment: { label: 'Environment', sql: environments.name },
    site: { label: 'Site', sql: servers.site },
    instanceType: { label: 'Instance type', sql: instances.instanceType },
    zone: { label: 'Zone', sql: instances.zone },
    address: { label: 'Address', sql: servers.address },
    role: { label: 'Role', sql: instances.role, format: 'badge' },
    state: { label: 'State', sql: instances.state, format: 'badge' },
    version: { label: 'Version', sql: instances.pgVersion, format: 'number' },
    upstream: { label: 'Upstream', sql: sql<string>`${upstreamServer.hostname} || ':' || ${upstream.port}`, sortNeedsDisplayJoins: true },
    timeline: { label: 'TL', sql: instances.timeline, format: 'number' },
    lsn: { label: 'LSN', sql: instances.lsn, format: 'lsn' },
    lag: { label: 'Lag', sql: instances.lagBytes, format: 'bytes' },
    lagSeconds: { label: 'Lag (s)', sql: instances.lagSeconds, format: 'seconds' },
    pendingRestart: { label: 'Pending restart', sql: instances.pendingRestart, format: 'bool' },
    // Against what its parameter groups say (lib/fleet/settings/drift-pass.ts); the herd's page says which.
    settings: {
      label: 'Settings',
      sql: sql<string>`CASE WHEN ${instances.settingsDrift} > 0 THEN ${instances.settingsDrift} || ' drifted' ELSE ${instances.settingsStatus} END`,
      sortable: false,
    },
    lastObservedAt: { label: 'Observed', sql: instances.lastObservedAt, format: 'datetime' },
  },
  listDisplay: [
    'server',
    'port',
    'herd',
    'environment',
    'site',
    'instanceType',
    'zone',
    'role',
    'state',
    'version',
    'upstream',
    'timeline',
    'lsn',
    'lag',
    'lagSeconds',
    'pendingRestart',
    'settings',
  ],
  listFilter: [
    { key: 'environment', label: 'Environment', kind: 'relation', sql: instances.environmentId, labelSql: environments.name },
    {
      key: 'herd',
      label: 'Herd',
      kind: 'relation',
      sql: instances.herdId,
      labelSql: sql`${environments.name} || '/' || ${herds.name}`,
      searchable: true,
    },
    { key: 'role', label: 'Role', kind: 'choice', sql: instances.role, choices: instanceRole.enumValues },
    { key: 'state', label: 'State', kind: 'choice', sql: instances.state, choices: instanceState.enumValues },
    { key: 'version', label: 'Version', kind: 'values', sql: instances.pgVersion, numeric: true },
    { key: 'site', label: 'Site', kind: 'values', sql: instances.site },
    { key: 'instanceType', label: 'Instance type', kind: 'values', sql: instances.instanceType },
    { key: 'zone', label: 'Availability zone', kind: 'values', sql: instances.zone },
    { key: 'settings', label: 'Settings', kind: 'choice', sql: instances.settingsStatus, choices: ['drifted', 'in line', 'no group'] },
  ],
  // 100,000 instances: the total and the counts by environment, role, state, version, site, type and zone are
  // read from instance_counts (a few thousand rows) rather than counted over every instance.
  counts: {
    table: instanceCounts,
    joins: [{ table: environments, on: eq(environments.id, instanceCounts.environmentId) }],
    n: instanceCounts.n,
    environment: instanceCounts.environmentId,
    filters: {
      environment: { sql: instanceCounts.environmentId, labelSql: environments.name },
      role: { sql: instanceCounts.role },
      state: { sql: instanceCounts.state },
      version: { sql: instanceCounts.pgVersion },
      site: { sql: instanceCounts.site },
      instanceType: { sql: instanceCounts.instanceType },
      zone: { sql: instanceCounts.zone },
      settings: { sql: instanceCounts.settingsStatus },
    },
  },
  searchFields: ['server', 'herd', 'environment'],
  // Host names usually carry environment and herd; sorting by them is an index walk, not a sort.
  ordering: ['server', 'port'],
  form: tableForm(instances, {
    herdId: { label: 'Herd', references: () => herdsAdmin },
    serverId: { label: 'Server', references: () => serversAdmin },
    port: { label: 'Port', help: 'Unique per server.', schema: f.int(1, 65535) },
    dataDirectory: { label: 'Data directory', help: 'Empty: the herd default.', schema: f.path() },
    pgVersion: { label: 'PostgreSQL major version', schema: f.int(9, 30) },
    role: { label: 'Role', help: 'Observed role; the state refresher and the agent keep it current.' },
    state: { label: 'State' },
    patroniUrl: {
      label: 'Patroni REST address',
      help: 'On a herd run by Patroni: this member\u2019s Patroni REST API on its own server, https://<the server\u2019s address>:8008 (admins only; the credentials are the environment\u2019s, in PGHERD_PG_CONFIG).',
      schema: f.restUrl(),
    },
    parameterGroupId: {
      label: 'Parameter group',
      help: 'Settings of its own, over its herd’s (docs/parameter-groups.md). Empty: its herd’s.',
      references: () => parameterGroupsAdmin,
      schema: f.optionalRelation(),
    },
    upstreamInstanceId: {
      label: 'Upstream instance id',
      help: 'For a replica: the instance it streams from.',
      input: { type: 'number' },
      references: () => instancesAdmin,
    },
  }),
  actions: actions
    .filter((a) => !isHerdAction(a) && !a.systemOnly)
    .map((a) => ({ name: a.name, label: a.label, href: `/operations/new?action=${a.name}`, role: a.permission })),
  uniqueErrors: { instances_server_port_key: ['port', 'This server already has an instance on this port.'] },
});
