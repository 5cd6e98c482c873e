import { z } from 'zod';
import { automationMode, controlDriver } from '@/db/schema';
import { defineForm, f } from '../form-fields';

export const herdForm = defineForm({
  schema: z.object({
    environmentId: f.relation(),
    name: f.name(100),
    description: f.text(),
    defaultPort: f.int(1, 65535),
    defaultDataDirectory: f.path(),
    pgVersion: f.int(9, 30),
    controlDriver: f.choice(controlDriver.enumValues),
    dnsName: f.text(253),
    automation: f.choice(automationMode.enumValues),
  }),
  fields: [
    { name: 'environmentId', label: 'Environment', input: { type: 'relation', model: 'environments' } },
    { name: 'name', label: 'Name', help: 'Unique within its environment.', input: { type: 'text' } },
    { name: 'description', label: 'Description', input: { type: 'textarea' } },
    { name: 'defaultPort', label: 'Default port', help: 'The port members listen on unless an instance overrides it.', input: { type: 'number' } },
    { name: 'defaultDataDirectory', label: 'Default data directory', help: 'For example /var/lib/postgresql/15/main.', input: { type: 'text' } },
    { name: 'pgVersion', label: 'PostgreSQL major version', input: { type: 'number' } },
    { name: 'controlDriver', label: 'Control driver', help: 'How pgherd starts and stops members: pg_ctl, Debian pg_ctlcluster, systemd or Patroni.', input: { type: 'select', choices: controlDriver.enumValues } },
    { name: 'dnsName', label: 'Primary DNS name', help: 'The name that follows the primary on switchover and failover (ElepHaaS vhost).', input: { type: 'text', placeholder: 'billing.db.example.com' } },
    { name: 'automation', label: 'Automation', help: 'maintenance: pgherd plans no automatic action on this herd.', input: { type: 'select', choices: automationMode.enumValues } },
  ],
});
