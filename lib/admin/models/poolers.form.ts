import { z } from 'zod';
import { ENTRY_NAME } from '@/lib/pgbouncer/ini';
import { defineForm, f } from '../form-fields';

/** "billing, billing_ro" -> ['billing', 'billing_ro']: the [databases] entries that point at the primary. */
const entries = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean) : v),
  z.array(z.string().regex(ENTRY_NAME, 'Entry names are letters, digits, _ . - (the first a letter, digit or _), at most 63 characters.'))
    .min(1, 'Name at least one [databases] entry.').max(50, 'At most 50 entries.')
    .refine((a) => new Set(a).size === a.length, 'An entry is named twice.'),
);

export const poolerForm = defineForm({
  schema: z.object({
    herdId: f.relation(),
    serverId: f.relation(),
    port: f.int(1, 65535),
    adminUser: f.name(63),
    configFile: f.path().refine((v) => v !== '', 'This field is required.'),
    databases: entries,
  }),
  fields: [
    { name: 'herdId', label: 'Herd', help: 'The herd whose primary this PgBouncer points at.', input: { type: 'relation', model: 'herds' } },
    { name: 'serverId', label: 'Server', help: 'Where it runs: pgherd edits its configuration there over SSH, as the server\u2019s SSH user.', input: { type: 'relation', model: 'servers' } },
    { name: 'port', label: 'Port', input: { type: 'number' } },
    { name: 'adminUser', label: 'Admin user', help: 'A user in its admin_users (PAUSE, RESUME, RELOAD); its password and TLS, if any, are the environment\u2019s pgbouncer entry in PGHERD_PG_CONFIG.', input: { type: 'text' } },
    { name: 'configFile', label: 'Configuration file', help: 'For example /etc/pgbouncer/pgbouncer.ini.', input: { type: 'text' } },
    { name: 'databases', label: '[databases] entries', help: 'Comma-separated: the entries a switchover points at the new primary.', input: { type: 'text' } },
  ],
});
