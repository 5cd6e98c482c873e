import { z } from 'zod';
import { defineForm, f } from '../form-fields';

export const serverForm = defineForm({
  schema: z.object({
    hostname: f.hostname(),
    environmentId: f.relation(),
    address: f.text(253),
    site: f.text(100),
    sshPort: f.int(1, 65535),
    sshUser: f.name(64),
    cloudProvider: f.optionalText(20),
    cloudRegion: f.optionalText(40),
    cloudInstanceId: f.optionalText(40),
    cloudInstanceType: f.optionalText(40),
  }),
  fields: [
    { name: 'hostname', label: 'Host name', help: 'The server identity; unique across the fleet.', input: { type: 'text' } },
    { name: 'environmentId', label: 'Environment', input: { type: 'relation', model: 'environments' } },
    { name: 'address', label: 'Address', help: 'Where pgherd connects (IP or name); empty means the host name.', input: { type: 'text' } },
    { name: 'site', label: 'Site', help: 'Data center or availability zone.', input: { type: 'text' } },
    { name: 'sshPort', label: 'SSH port', input: { type: 'number' } },
    { name: 'sshUser', label: 'SSH user', help: 'The OS user that owns the Postgres data directories.', input: { type: 'text' } },
    { name: 'cloudProvider', label: 'Cloud provider', help: 'aws, or empty for bare metal.', input: { type: 'text' } },
    { name: 'cloudRegion', label: 'Cloud region', input: { type: 'text' } },
    { name: 'cloudInstanceId', label: 'Cloud instance id', input: { type: 'text', placeholder: 'i-0123456789abcdef0' } },
    { name: 'cloudInstanceType', label: 'Cloud instance type', input: { type: 'text', placeholder: 'r6g.large' } },
  ],
});
