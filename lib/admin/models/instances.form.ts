import { z } from 'zod';
import { instanceRole, instanceState } from '@/db/schema';
import { defineForm, f } from '../form-fields';

export const instanceForm = defineForm({
  schema: z.object({
    herdId: f.relation(),
    serverId: f.relation(),
    port: f.int(1, 65535),
    dataDirectory: f.path(),
    pgVersion: f.int(9, 30),
    role: f.choice(instanceRole.enumValues),
    state: f.choice(instanceState.enumValues),
    upstreamInstanceId: f.optionalRelation(),
  }),
  fields: [
    { name: 'herdId', label: 'Herd', input: { type: 'relation', model: 'herds' } },
    { name: 'serverId', label: 'Server', input: { type: 'relation', model: 'servers' } },
    { name: 'port', label: 'Port', help: 'Unique per server.', input: { type: 'number' } },
    { name: 'dataDirectory', label: 'Data directory', help: 'Empty: the herd default.', input: { type: 'text' } },
    { name: 'pgVersion', label: 'PostgreSQL major version', input: { type: 'number' } },
    { name: 'role', label: 'Role', help: 'Observed role; the state refresher and the agent keep it current.', input: { type: 'select', choices: instanceRole.enumValues } },
    { name: 'state', label: 'State', input: { type: 'select', choices: instanceState.enumValues } },
    { name: 'upstreamInstanceId', label: 'Upstream instance id', help: 'For a replica: the instance it streams from.', input: { type: 'number' }, references: 'instances' },
  ],
});
