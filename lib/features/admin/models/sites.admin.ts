// Sites (data centres, availability zones) as servers name them, and how much of each may be busy at
// once: the cap counts operation targets running on the site's servers, over every operation and
// worker (lib/engine/lease.ts). Global: a site spans environments, so only global admins change it.
import { sql } from 'drizzle-orm';
import { qualified } from '@/lib/fleet/qualified';
import { sites } from '@/db/schema';
import { defineAdmin } from '../define-admin';
import { f, tableForm } from '../form-fields';

export const sitesAdmin = defineAdmin({
  name: 'sites',
  label: 'site',
  labelPlural: 'sites',
  table: sites,
  id: sites.id,
  labelSql: sites.name,
  permissions: { add: 'admin', change: 'admin', delete: 'admin' },
  fields: {
    name: { label: 'Name', sql: sites.name, link: 'self' },
    description: { label: 'Description', sql: sites.description, sortable: false },
    servers: {
      label: 'Servers',
      sql: sql<number>`(SELECT count(*) FROM servers s WHERE s.site = ${qualified(sites.name)})::int`,
      format: 'number',
      sortable: false,
    },
    maxRunning: { label: 'Running targets at most', sql: sites.maxRunning, format: 'number' },
    running: {
      label: 'Running now',
      sql: sql<number>`(SELECT count(*) FROM operation_targets t WHERE t.status = 'running' AND t.site = ${qualified(sites.name)})::int`,
      format: 'number',
      sortable: false,
    },
  },
  listDisplay: ['name', 'description', 'servers', 'maxRunning', 'running'],
  listFilter: [],
  searchFields: ['name', 'description'],
  ordering: ['name'],
  form: tableForm(sites, {
    name: { label: 'Name', help: 'As servers name it in their site field, for example dc-east or eu-west-1a.', schema: f.name(100) },
    description: { label: 'Description', input: { type: 'textarea' } },
    maxRunning: {
      label: 'Running targets at most',
      help: 'How many operation targets may run at once on this site’s servers, over every operation and worker. Empty: no cap.',
      schema: f.optionalInt(1, 100_000),
    },
  }),
  uniqueErrors: { sites_name_key: ['name', 'A site with this name already exists.'] },
});
