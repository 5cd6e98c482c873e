// GET /api/v1/instances and GET /api/v1/herds: the changelists' filters, strictly validated.
import { z } from 'zod';
import { automationMode, controlDriver, dnsRecordType, instanceRole, instanceState } from '@/db/schema';
import { idText } from '@/lib/adapters/validation/ids';
import { pagingQuery, searchText } from '@/lib/features/api/list';
import { defineRoute } from './define';

const when = z.iso.datetime({ offset: true });

/** A page of a list: its items, how many there are in all, and where this page is. */
const page = <T extends z.ZodType>(item: T) =>
  z.object({
    items: z.array(item),
    total: z.number().int().min(0).meta({ description: 'How many match, on every page.' }),
    page: z.number().int().min(1),
    pages: z.number().int().min(0),
  });

export const instancesQuery = z
  .object({
    environment: idText('environment').optional().meta({ description: "An environment's id." }),
    herd: idText('herd').optional().meta({ description: "A herd's id." }),
    role: z.enum(instanceRole.enumValues).optional(),
    state: z.enum(instanceState.enumValues).optional(),
    site: searchText().optional(),
    instanceType: searchText().optional().meta({ description: 'An EC2 instance type (m6i.large).' }),
    zone: searchText().optional().meta({ description: 'An availability zone (eu-west-1a).' }),
    version: z.coerce.number().int().min(9).max(99).optional().meta({ description: "PostgreSQL's major version." }),
    ...pagingQuery,
  })
  .strict();

export const instanceItem = z
  .object({
    id: z.number().int(),
    environment: z.string(),
    herd: z.string(),
    herdId: z.number().int(),
    server: z.string().meta({ description: "The server's host name." }),
    address: z.string().nullable(),
    site: z.string(),
    instanceType: z.string().nullable().meta({ description: 'The EC2 instance type, when EC2 discovery knows it.' }),
    zone: z.string().nullable(),
    port: z.number().int(),
    role: z.enum(instanceRole.enumValues),
    state: z.enum(instanceState.enumValues),
    version: z.number().int().nullable(),
    upstream: z.string().nullable().meta({ description: 'The instance it streams from (host:port), for a replica.' }),
    timeline: z.number().int().nullable(),
    lsn: z.number().nullable().meta({ description: 'Its WAL position as last observed, as a number of bytes (pg_lsn 0/0 is 0).' }),
    lagBytes: z.number().nullable().meta({ description: "A replica's replay lag behind its primary, in bytes, as last observed." }),
    lagSeconds: z.number().nullable(),
    pendingRestart: z.boolean().nullable(),
    lastObservedAt: when.nullable(),
  })
  .meta({ id: 'Instance' });

export const listInstances = defineRoute({
  method: 'get',
  path: '/api/v1/instances',
  tag: 'Inventory',
  summary: 'List instances',
  description: "The instances changelist: its filters, search, sort and paging; what the caller's roles let them see.",
  auth: 'read',
  query: instancesQuery,
  responses: { 200: { description: 'A page of instances.', schema: page(instanceItem).meta({ id: 'InstancePage' }) } },
});

export const herdsQuery = z
  .object({
    environment: idText('environment').optional().meta({ description: "An environment's id." }),
    automation: z.enum(automationMode.enumValues).optional(),
    driver: z.enum(controlDriver.enumValues).optional(),
    version: z.coerce.number().int().min(9).max(99).optional(),
    ...pagingQuery,
  })
  .strict();

export const herdItem = z
  .object({
    id: z.number().int(),
    environment: z.string(),
    name: z.string(),
    version: z.number().int().nullable(),
    automation: z.enum(automationMode.enumValues),
    controlDriver: z.enum(controlDriver.enumValues),
    patroni: z
      .string()
      .nullable()
      .meta({ description: "Patroni's view as the worker last read it (leader X, paused, TWO PRIMARIES ...); null for other herds." }),
    primary: z.object({ id: z.number().int(), label: z.string(), state: z.enum(instanceState.enumValues) }).nullable(),
    members: z.array(
      z.object({
        id: z.number().int(),
        label: z.string(),
        server: z.string(),
        site: z.string(),
        port: z.number().int(),
        role: z.enum(instanceRole.enumValues),
        state: z.enum(instanceState.enumValues),
        upstreamId: z.number().int().nullable(),
        lsn: z.number().nullable(),
        lagBytes: z.number().nullable(),
        patroniUrl: z.string().nullable(),
      }),
    ),
    worstLagBytes: z.number().nullable(),
    dns: z.array(
      z.object({
        name: z.string(),
        type: z.enum(dnsRecordType.enumValues),
        ttl: z.number().int(),
        answers: z.array(z.string()).nullable().meta({ description: "What the zone's server last answered; null: not asked yet." }),
        drifted: z.boolean().nullable(),
        checkedAt: when.nullable(),
      }),
    ),
    dnsDrift: z.string().nullable(),
  })
  .meta({ id: 'Herd' });

export const listHerds = defineRoute({
  method: 'get',
  path: '/api/v1/herds',
  tag: 'Inventory',
  summary: 'List herds',
  description:
    'The herds changelist: each herd with its control driver (and Patroni\u2019s view), its primary, its members as last observed, its worst lag and its DNS records with what their server last answered.',
  auth: 'read',
  query: herdsQuery,
  responses: { 200: { description: 'A page of herds.', schema: page(herdItem).meta({ id: 'HerdPage' }) } },
});
