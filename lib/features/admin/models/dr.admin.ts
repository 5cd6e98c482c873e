// The DR changelist (each herd paired with where it would fail over to): one row per herd with its
// primary and its failover candidate as last observed (the running replica with the most WAL; the
// failover measures again when it runs), the candidate's site and lag; bulk DR failover.
import { sql } from 'drizzle-orm';
import { qualified } from '@/lib/fleet/qualified';
import { environments, herds } from '@/db/schema';
import { defineAdmin } from '../define-admin';
import { herdRows } from './herds.admin';
import { drFailoverAction } from '@/lib/actions/topology/dr-failover.action';

const herdId = () => qualified(herds.id);
// The same order as rankReplicas (lib/fleet/candidates.ts): most WAL, then least lag, then id.
const candidateId = () => sql`(SELECT i.id FROM instances i WHERE i.herd_id = ${herdId()} AND i.role = 'replica' AND i.state = 'running'
  ORDER BY i.lsn DESC NULLS LAST, i.lag_bytes ASC NULLS LAST, i.id LIMIT 1)`;
const primaryId = () =>
  sql`(SELECT i.id FROM instances i WHERE i.herd_id = ${herdId()} AND i.role = 'primary' AND i.state <> 'fenced' ORDER BY i.id LIMIT 1)`;
const labelOf = (id: ReturnType<typeof sql>) =>
  sql<string>`(SELECT s.hostname || ':' || i.port FROM instances i JOIN servers s ON s.id = i.server_id WHERE i.id = ${id})`;
const siteOf = (id: ReturnType<typeof sql>) =>
  sql<string>`(SELECT s.site FROM instances i JOIN servers s ON s.id = i.server_id WHERE i.id = ${id})`;

export const drAdmin = defineAdmin({
  name: 'dr',
  label: 'DR pair',
  labelPlural: 'DR pairs',
  ...herdRows,
  fields: {
    name: { label: 'Herd', sql: herds.name, link: 'self' },
    environment: { label: 'Environment', sql: environments.name },
    primary: { label: 'Primary', sql: labelOf(primaryId()), sortable: false },
    primaryState: {
      label: 'Primary state',
      sql: sql<string>`(SELECT i.state::text FROM instances i WHERE i.id = ${primaryId()})`,
      format: 'badge',
      sortable: false,
    },
    primarySite: { label: 'Primary site', sql: siteOf(primaryId()), sortable: false },
    candidate: { label: 'Candidate', sql: labelOf(candidateId()), sortable: false },
    candidateSite: { label: 'Candidate site', sql: siteOf(candidateId()), sortable: false },
    lag: {
      label: 'Lag',
      sql: sql<number>`(SELECT greatest(p.lsn - c.lsn, 0) FROM instances p, instances c WHERE p.id = ${primaryId()} AND c.id = ${candidateId()})`,
      format: 'bytes',
      sortable: false,
    },
  },
  listDisplay: ['name', 'environment', 'primary', 'primaryState', 'primarySite', 'candidate', 'candidateSite', 'lag'],
  listFilter: [
    { key: 'environment', label: 'Environment', kind: 'relation', sql: herds.environmentId, labelSql: environments.name },
    { key: 'site', label: 'Primary site', kind: 'values', sql: siteOf(primaryId()) },
    { key: 'candidate_site', label: 'Candidate site', kind: 'values', sql: siteOf(candidateId()) },
  ],
  searchFields: ['name', 'environment'],
  ordering: ['environment', 'name'],
  actions: [
    { name: 'dr-failover', label: 'DR failover', href: '/operations/new?action=dr-failover&from=dr', role: drFailoverAction.permission },
  ],
});
