import { eq, sql } from 'drizzle-orm';
import { qualified } from '@/lib/fleet/qualified';
import { z } from 'zod';
import { automationMode, controlDriver, environments, herds, hookHost } from '@/db/schema';
import { f, tableForm } from '../form-fields';
import { environmentsAdmin } from './environments.admin';
import { parameterGroupsAdmin, settingsText } from './parameter-groups.admin';
import { declarationText, DECLARATION_HELP, objectSetsAdmin } from './object-sets.admin';
import { defineAdmin } from '../define-admin';
import { herdDependents } from '../environment-checks';
import { isHerdAction } from '@/lib/engine/define-action';
import { actions } from '@/lib/actions/registry';
import { BACKUP_STATUSES, backupStatusSql, backupSummarySql } from '@/lib/fleet/backups/status-sql';

/** What every list of herds shares (this one, and the DR pairs list). */
export const herdRows = {
  table: herds,
  id: herds.id,
  joins: [{ table: environments, on: eq(herds.environmentId, environments.id) }],
  labelSql: sql`${environments.name} || '/' || ${herds.name}`,
  environmentSql: herds.environmentId,
  // A herd's name leads to its live page (members, DNS, operations); that page links to its form.
  objectHref: '/herds',
};

export const herdsAdmin = defineAdmin({
  name: 'herds',
  label: 'herd',
  labelPlural: 'herds',
  ...herdRows,
  fields: {
    name: { label: 'Name', sql: herds.name, link: 'self' },
    environmentId: { label: 'Environment id', sql: herds.environmentId, sortable: false },
    environment: { label: 'Environment', sql: environments.name, link: { model: 'environments', idField: 'environmentId' } },
    members: {
      label: 'Members',
      sql: sql<number>`(SELECT count(*) FROM instances i WHERE i.herd_id = ${qualified(herds.id)})::int`,
      format: 'number',
      sortable: false,
    },
    primary: {
      label: 'Primary',
      sql: sql<string>`(SELECT s.hostname || ':' || i.port FROM instances i JOIN servers s ON s.id = i.server_id WHERE i.herd_id = ${qualified(herds.id)} AND i.role = 'primary' ORDER BY i.id LIMIT 1)`,
      sortable: false,
    },
    replicas: {
      label: 'Replicas',
      sql: sql<number>`(SELECT count(*) FROM instances i WHERE i.herd_id = ${qualified(herds.id)} AND i.role = 'replica')::int`,
      format: 'number',
      sortable: false,
    },
    worstLag: {
      label: 'Worst lag',
      sql: sql<number>`(SELECT max(i.lag_bytes) FROM instances i WHERE i.herd_id = ${qualified(herds.id)} AND i.role = 'replica')`,
      format: 'bytes',
      sortable: false,
    },
    dnsName: { label: 'DNS name', sql: herds.dnsName },
    // Set by the worker's refresher, which asks each record at its zone's server; empty: not asked yet.
    dnsDrift: {
      label: 'DNS drift',
      sql: sql<string>`(SELECT CASE WHEN bool_or(d.drifted) THEN 'drifted' WHEN bool_and(d.drifted = false) THEN 'ok' END FROM dns_records d WHERE d.herd_id = ${qualified(herds.id)})`,
      format: 'badge',
      sortable: false,
    },
    // Patroni's view as the worker last read it (lib/features/patroni/follow.ts), next to pgherd's primary.
    patroni: {
      label: 'Patroni',
      sql: sql<string>`(CASE WHEN ${qualified(herds.controlDriver)} <> 'patroni' THEN NULL
        WHEN ${qualified(herds.patroniReadAt)} IS NULL OR ${qualified(herds.patroniReadAt)} < now() - interval '5 minutes' THEN 'not read lately'
        WHEN ${qualified(herds.patroniProblem)} LIKE 'two primaries%' THEN upper(${qualified(herds.patroniProblem)})
        WHEN ${qualified(herds.patroniProblem)} LIKE 'Patroni''s leader %' THEN 'leader ' || ${qualified(herds.patroniLeader)} || ', ' || ${qualified(herds.patroniProblem)}
        WHEN ${qualified(herds.patroniProblem)} <> '' THEN 'no member answers'
        WHEN ${qualified(herds.patroniLeader)} = '' THEN 'nobody leads'
        ELSE 'leader ' || ${qualified(herds.patroniLeader)}
          || CASE WHEN ${qualified(herds.patroniPaused)} THEN ', paused' ELSE '' END
          || CASE WHEN ${qualified(herds.patroniLeaderInstanceId)} IS NULL THEN ' (not in pgherd''s inventory)'
                  WHEN NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = ${qualified(herds.patroniLeaderInstanceId)} AND i.role = 'primary')
                  THEN ' (not pgherd''s primary)' ELSE '' END
        END)`,
      sortable: false,
    },
    // What the repository holds and how far the archive is behind (lib/fleet/backups/status-sql.ts).
    backups: { label: 'Backups', sql: backupSummarySql(qualified(herds.id)), sortable: false },
    backupStatus: { label: 'Backup standing', sql: backupStatusSql(qualified(herds.id)), format: 'badge', sortable: false },
    settings: {
      label: 'Settings',
      sql: sql<string>`(SELECT CASE WHEN count(*) FILTER (WHERE i.settings_drift > 0) > 0 THEN count(*) FILTER (WHERE i.settings_drift > 0) || ' drifted'
        WHEN bool_or(i.settings_drift = 0) THEN 'in line' END FROM instances i WHERE i.herd_id = ${qualified(herds.id)})`,
      sortable: false,
    },
    objects: {
      label: 'Objects',
      sql: sql<string>`(SELECT CASE WHEN i.objects_drift > 0 THEN i.objects_drift || ' drifted' WHEN i.objects_drift = 0 THEN 'in line' END
        FROM instances i WHERE i.herd_id = ${qualified(herds.id)} AND i.role = 'primary' ORDER BY i.id LIMIT 1)`,
      sortable: false,
    },
    risks: {
      label: 'Risks',
      // (risks_herd_idx) Those that count: an acknowledged risk is left out until it counts again.
      sql: sql<string>`(SELECT CASE WHEN count(*) FILTER (WHERE r.severity = 'critical') > 0 THEN count(*) FILTER (WHERE r.severity = 'critical') || ' critical'
          WHEN count(*) > 0 THEN count(*) || ' warning' || CASE WHEN count(*) > 1 THEN 's' ELSE '' END END
        FROM risks r WHERE r.herd_id = ${qualified(herds.id)} AND r.counted)`,
      sortable: false,
    },
    pgVersion: { label: 'Version', sql: herds.pgVersion, format: 'number' },
    controlDriver: { label: 'Control', sql: herds.controlDriver },
    automation: { label: 'Automation', sql: herds.automation, format: 'badge' },
  },
  listDisplay: [
    'name',
    'environment',
    'members',
    'primary',
    'replicas',
    'worstLag',
    'dnsName',
    'dnsDrift',
    'patroni',
    'backups',
    'settings',
    'objects',
    'risks',
    'pgVersion',
    'controlDriver',
    'automation',
  ],
  listFilter: [
    { key: 'environment', label: 'Environment', kind: 'relation', sql: herds.environmentId, labelSql: environments.name },
    { key: 'automation', label: 'Automation', kind: 'choice', sql: herds.automation, choices: automationMode.enumValues },
    { key: 'driver', label: 'Control driver', kind: 'choice', sql: herds.controlDriver, choices: controlDriver.enumValues },
    { key: 'version', label: 'Version', kind: 'values', sql: herds.pgVersion, numeric: true },
    { key: 'backups', label: 'Backups', kind: 'choice', sql: backupStatusSql(qualified(herds.id)), choices: BACKUP_STATUSES },
    {
      key: 'settings',
      label: 'Settings',
      kind: 'choice',
      sql: sql<string>`(SELECT CASE WHEN bool_or(i.settings_drift > 0) THEN 'drifted' WHEN bool_or(i.settings_drift = 0) THEN 'in line' ELSE 'no group' END
        FROM instances i WHERE i.herd_id = ${qualified(herds.id)})`,
      choices: ['drifted', 'in line', 'no group'],
    },
    {
      key: 'objects',
      label: 'Objects',
      kind: 'choice',
      sql: sql<string>`(SELECT CASE WHEN bool_or(i.objects_drift > 0) THEN 'drifted' WHEN bool_or(i.objects_drift = 0) THEN 'in line' ELSE 'not declared' END
        FROM instances i WHERE i.herd_id = ${qualified(herds.id)} AND i.role = 'primary')`,
      choices: ['drifted', 'in line', 'not declared'],
    },
    {
      key: 'risks',
      label: 'Risks',
      kind: 'choice',
      sql: sql<string>`(SELECT CASE WHEN bool_or(r.severity = 'critical') THEN 'critical' WHEN count(*) > 0 THEN 'warning' ELSE 'none' END
        FROM risks r WHERE r.herd_id = ${qualified(herds.id)} AND r.counted)`,
      choices: ['critical', 'warning', 'none'],
    },
  ],
  searchFields: ['name', 'dnsName', 'environment'],
  ordering: ['environment', 'name'],
  form: tableForm(herds, {
    environmentId: { label: 'Environment', references: () => environmentsAdmin },
    name: { label: 'Name', help: 'Unique within its environment.', schema: f.name(100) },
    description: { label: 'Description', input: { type: 'textarea' } },
    defaultPort: { label: 'Default port', help: 'The port members listen on unless an instance overrides it.', schema: f.int(1, 65535) },
    defaultDataDirectory: { label: 'Default data directory', help: 'For example /var/lib/postgresql/15/main.', schema: f.path() },
    pgVersion: { label: 'PostgreSQL major version', schema: f.int(9, 30) },
    controlDriver: {
      label: 'Control driver',
      help: 'How pgherd starts and stops members: pg_ctl, Debian pg_ctlcluster, systemd or Patroni.',
    },
    dnsName: {
      label: 'Primary DNS name',
      help: 'The name that follows the primary on switchover and failover: what clients that write connect to.',
      input: { type: 'text', placeholder: 'billing.db.example.com' },
      schema: f.text(253),
    },
    automation: { label: 'Automation', help: 'maintenance: pgherd plans no automatic action on this herd.' },
    patroniScope: {
      label: 'Patroni scope',
      help: 'With the Patroni control driver: the cluster\u2019s scope in patroni.yml. Its members\u2019 REST addresses are on their instances.',
      schema: z
        .string()
        .trim()
        .max(100, 'At most 100 characters.')
        .regex(/^[A-Za-z0-9._-]*$/, 'Letters, digits and . _ - only, as in patroni.yml.')
        .default(''),
    },
    resizePreHook: {
      label: 'Pre-resize hook',
      help: 'Absolute path of an executable in the worker\u2019s PGHERD_HOOK_DIR, run before a member is stopped for a resize (its arguments: docs/actions.md, "Resize hooks"). A failure stops the resize before anything is stopped.',
      schema: f.path(),
    },
    resizePostHook: {
      label: 'Post-resize hook',
      help: 'Run once the resized member streams again, before its DNS names come back.',
      schema: f.path(),
    },
    hooksRunOn: {
      label: 'Hooks run on',
      help: 'worker: the pgherd worker host; database: the member\u2019s host, over SSH as its SSH user.',
      schema: z.enum(hookHost.enumValues).default('database'),
    },
    parameterGroupId: {
      label: 'Parameter group',
      help: 'The settings its members should run, in place of its environment’s group. Empty: the environment’s.',
      references: () => parameterGroupsAdmin,
      schema: f.optionalRelation(),
    },
    settingOverrides: {
      label: 'Setting overrides',
      help: "Settings of this herd over its group's, as postgresql.conf lines (name = 'value'). Apply settings puts them in place.",
      input: { type: 'textarea' },
      schema: settingsText,
    },
    objectSetId: {
      label: 'Object set',
      help: 'The roles, databases, extensions and access rules it should have, in place of its environment\u2019s set. Empty: the environment\u2019s.',
      references: () => objectSetsAdmin,
      schema: f.optionalRelation(),
    },
    objectOverrides: {
      label: 'Object overrides',
      help: `Objects of this herd over its set's (a role or database named again replaces the set's; its hba lines come first). No superuser here. ${DECLARATION_HELP}`,
      input: { type: 'textarea' },
      schema: declarationText(false),
    },
    hookTimeoutSeconds: {
      label: 'Hook timeout (s)',
      help: 'A hook still running after this long is stopped and fails.',
      schema: z.preprocess((v) => (v === '' || v === undefined || v === null ? 300 : v), f.int(1, 3600)),
    },
  }),
  validate: (tx, id) => herdDependents(tx, id),
  // What its members' Postgres should run and have: Apply settings and Apply fleet objects put it in place.
  adminFields: ['parameterGroupId', 'settingOverrides', 'objectSetId', 'objectOverrides'],
  adminOnAdd: ['parameterGroupId', 'settingOverrides', 'objectSetId', 'objectOverrides'],
  actions: actions
    .filter(isHerdAction)
    .map((a) => ({ name: a.name, label: a.label, href: `/operations/new?action=${a.name}`, role: a.permission })),
  uniqueErrors: {
    herds_environment_name_key: ['name', 'A herd with this name already exists in this environment.'],
  },
});
