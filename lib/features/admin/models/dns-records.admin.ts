import { eq, sql } from 'drizzle-orm';
import { dnsMatch, dnsProvider, dnsRecords, environments, herds } from '@/db/schema';
import { defineAdmin } from '../define-admin';
import { dnsRecordRules } from '../environment-checks';
import { f, tableForm } from '../form-fields';
import { herdsAdmin } from './herds.admin';
import { instancesAdmin } from './instances.admin';

export const dnsRecordsAdmin = defineAdmin({
  name: 'dns-records',
  label: 'DNS record',
  labelPlural: 'DNS records',
  table: dnsRecords,
  id: dnsRecords.id,
  joins: [
    { table: herds, on: eq(dnsRecords.herdId, herds.id) },
    { table: environments, on: eq(herds.environmentId, environments.id) },
  ],
  labelSql: sql`${dnsRecords.name} || ' ' || ${dnsRecords.type}`,
  environmentSql: herds.environmentId,
  sameEnvironment: ['matchInstanceId'],
  validate: (tx, id) => dnsRecordRules(tx, id),
  fields: {
    name: { label: 'Name', sql: dnsRecords.name, link: 'self' },
    type: { label: 'Type', sql: dnsRecords.type },
    herdId: { label: 'Herd id', sql: dnsRecords.herdId, sortable: false },
    herd: { label: 'Herd', sql: sql<string>`${environments.name} || '/' || ${herds.name}`, link: { model: 'herds', idField: 'herdId' } },
    zone: { label: 'Zone', sql: dnsRecords.zone },
    provider: { label: 'Provider', sql: dnsRecords.provider },
    ttl: { label: 'TTL', sql: dnsRecords.ttl, format: 'number' },
    follows: {
      label: 'Follows',
      sql: sql<string>`CASE WHEN ${dnsRecords.match} = 'role' THEN 'role ' || ${dnsRecords.matchRole} ELSE 'instance #' || ${dnsRecords.matchInstanceId} END`,
      sortable: false,
    },
  },
  listDisplay: ['name', 'type', 'herd', 'zone', 'provider', 'ttl', 'follows'],
  listFilter: [
    { key: 'environment', label: 'Environment', kind: 'relation', sql: herds.environmentId, labelSql: environments.name },
    { key: 'provider', label: 'Provider', kind: 'choice', sql: dnsRecords.provider, choices: dnsProvider.enumValues },
    { key: 'match', label: 'Follows', kind: 'choice', sql: dnsRecords.match, choices: dnsMatch.enumValues },
  ],
  searchFields: ['name', 'zone', 'herd'],
  ordering: ['name'],
  form: tableForm(dnsRecords, {
    herdId: { label: 'Herd', references: () => herdsAdmin },
    name: { label: 'Name', help: 'Fully qualified, for example billing.db.example.com.', schema: f.hostname() },
    type: { label: 'Type' },
    zone: { label: 'Zone', help: 'The zone the name is updated in.', schema: f.hostname() },
    provider: { label: 'Provider', help: 'rfc2136: signed UPDATEs to the zone\u2019s server; route53: change batches.' },
    ttl: { label: 'TTL (seconds)', schema: f.int(1, 86400) },
    match: { label: 'Follows', help: 'role: whichever member has the role; instance: one fixed member.' },
    matchRole: { label: 'Role followed' },
    matchInstanceId: { label: 'Instance followed (id)', input: { type: 'number' }, references: () => instancesAdmin },
  }),
  uniqueErrors: { dns_records_name_type_key: ['name', 'A record with this name and type already exists.'] },
});
