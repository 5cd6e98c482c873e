import { eq, sql } from 'drizzle-orm';
import { environments, herds, poolers, servers } from '@/db/schema';
import { defineAdmin } from '../define-admin';
import { poolerForm } from './poolers.form';

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
    herd: { label: 'Herd', sql: sql<string>`${environments.name} || '/' || ${herds.name}`, link: { model: 'herds', idField: 'herdId' }, sortable: false },
    server: { label: 'Server', sql: servers.hostname },
    configFile: { label: 'Configuration file', sql: poolers.configFile, sortable: false },
    databases: { label: 'Entries', sql: sql<string>`array_to_string(${poolers.databases}, ', ')`, sortable: false },
  },
  listDisplay: ['pooler', 'herd', 'configFile', 'databases'],
  listFilter: [
    { key: 'environment', label: 'Environment', kind: 'relation', sql: herds.environmentId, labelSql: environments.name },
  ],
  searchFields: ['server', 'herd'],
  ordering: ['server'],
  form: poolerForm,
  uniqueErrors: { poolers_server_port_key: ['port', 'A PgBouncer on this server and port is registered already.'] },
});
