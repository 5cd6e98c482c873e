import { z } from 'zod';
import { dnsMatch, dnsProvider, dnsRecordType, instanceRole } from '@/db/schema';
import { defineForm, f } from '../form-fields';

export const dnsRecordForm = defineForm({
  schema: z.object({
    herdId: f.relation(),
    name: f.hostname(),
    type: f.choice(dnsRecordType.enumValues),
    zone: f.hostname(),
    provider: f.choice(dnsProvider.enumValues),
    ttl: f.int(1, 86400),
    match: f.choice(dnsMatch.enumValues),
    matchRole: f.optionalChoice(instanceRole.enumValues),
    matchInstanceId: f.optionalRelation(),
  }),
  fields: [
    { name: 'herdId', label: 'Herd', input: { type: 'relation', model: 'herds' } },
    { name: 'name', label: 'Name', help: 'Fully qualified, for example billing.db.example.com.', input: { type: 'text' } },
    { name: 'type', label: 'Type', input: { type: 'select', choices: dnsRecordType.enumValues } },
    { name: 'zone', label: 'Zone', help: 'The zone the name is updated in.', input: { type: 'text' } },
    { name: 'provider', label: 'Provider', help: 'rfc2136: signed UPDATEs to the zone\u2019s server; route53: change batches.', input: { type: 'select', choices: dnsProvider.enumValues } },
    { name: 'ttl', label: 'TTL (seconds)', input: { type: 'number' } },
    { name: 'match', label: 'Follows', help: 'role: whichever member has the role; instance: one fixed member.', input: { type: 'select', choices: dnsMatch.enumValues } },
    { name: 'matchRole', label: 'Role followed', input: { type: 'select', choices: instanceRole.enumValues, optional: true } },
    { name: 'matchInstanceId', label: 'Instance followed (id)', input: { type: 'number' }, references: 'instances' },
  ],
});
