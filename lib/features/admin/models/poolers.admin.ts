import { eq, sql } from 'drizzle-orm';
import { environments, herds, poolers, servers } from '@/db/schema';
import { defineAdmin } from '../define-admin';
import { z } from 'zod';
import { ENTRY_NAME } from '@/lib/adapters/pgbouncer/ini';
import { f, tableForm } from '../form-fields';
import { herdsAdmin } from './herds.admin';
import { serversAdmin } from './servers.admin';

/** "billing, billing_ro" -> ['billing', 'billing_ro']: the [databases] entries that point at the primary. */
const entries = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? v
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)
      : v,
  z
    .array(z.string().regex(ENTRY_NAME, 'Entry names are letters, digits, _ . - (the first a letter, digit or _), at most 63 characters.'))
    .min(1, 'Name at least one [databases] entry.')
    .max(50, 'At most 50 entries.')
    .refine((a) => new Set(a).size === a.length, 'An entry is named twice.'),
);

export const poolersAdmin = defineAdmin({
  name: 'poolers',
  label: 'PgBouncer',
  labelPlural: 'PgBouncers',
  table: poolers,
  id: poolers.id,
  joins: [
    { table: herds, on: eq(poolers.herdId, herds.id) },
    { table: environments, on: eq(herds.environmentId, environments.id) },
    { table: servers, on: eq(poolers.serverId, servers.id) },
  ],
  labelSql: sql`${servers.hostname} || ':' || ${poolers.port}`,
  environmentSql: herds.environmentId,
  sameEnvironment: ['serverId'],
  fields: {
    pooler: { label: 'PgBouncer', sql: sql<string>`${servers.hostname} || ':' || ${poolers.port}`, link: 'self', sortable: false },
    herdId: { label: 'Herd id', sql: poolers.herdId, sortable: false },
    herd: {
      label: 'Herd',
      sql: sql<string>`${environments.name} || '/' || ${herds.name}`,
      link: { model: 'herds', idField: 'herdId' },
      sortable: false,
    },
    server: { label: 'Server', sql: servers.hostname },
    configFile: { label: 'Configuration file', sql: poolers.configFile, sortable: false },
    databases: { label: 'Entries', sql: sql<string>`array_to_string(${poolers.databases}, ', ')`, sortable: false },
  },
  listDisplay: ['pooler', 'herd', 'configFile', 'databases'],
  listFilter: [{ key: 'environment', label: 'Environment', kind: 'relation', sql: herds.environmentId, labelSql: environments.name }],
  searchFields: ['server', 'herd'],
  ordering: ['server'],
  form: tableForm(poolers, {
    herdId: { label: 'Herd', help: 'The herd whose primary this PgBouncer points at.', references: () => herdsAdmin },
    serverId: {
      label: 'Server',
      help: 'Where it runs: pgherd edits its configuration there over SSH, as the server\u2019s SSH user.',
      references: () => serversAdmin,
    },
    port: { label: 'Port', schema: f.int(1, 65535) },
    adminUser: {
      label: 'Admin user',
      help: 'A user in its admin_users (PAUSE, RESUME, RELOAD); its password and TLS, if any, are the environment\u2019s pgbouncer entry in PGHERD_PG_CONFIG.',
      schema: f.name(63),
    },
    configFile: {
      label: 'Configuration file',
      help: 'For example /etc/pgbouncer/pgbouncer.ini.',
      schema: f.path().refine((v) => v !== '', 'This field is required.'),
    },
    databases: {
      label: '[databases] entries',
      help: 'Comma-separated: the entries a switchover points at the new primary.',
      input: { type: 'text' },
      schema: entries,
    },
  }),
  uniqueErrors: { poolers_server_port_key: ['port', 'A PgBouncer on this server and port is registered already.'] },
});
