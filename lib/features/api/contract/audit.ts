// The audit log for a SIEM: its entries as JSON lines, each with its place in the hash chain
// (lib/features/audit/chain.ts).
import { z } from 'zod';
import { defineRoute } from './define';

const instant = z.iso.datetime({ offset: true }).meta({ description: 'An instant, ISO 8601 with its offset: 2026-11-28T00:00:00Z.' });

export const auditExportQuery = z
  .object({
    from: instant.meta({ description: 'The first instant of the range (included).' }),
    to: instant.optional().meta({ description: 'The end of the range (excluded); default now.' }),
  })
  .strict();

export const auditLine = z
  .object({
    seq: z.number().int().meta({ description: 'Its place in the chain: 1, 2, ... in the order entries were sealed.' }),
    prevHash: z.string().meta({ description: 'The hash of the entry sealed before it (64 zeros for the first).' }),
    hash: z
      .string()
      .meta({ description: 'SHA-256 (hex) of prevHash followed by `entry` as canonical JSON (keys sorted at every depth, no spaces).' }),
    entry: z.object({
      id: z.number().int(),
      at: z.string().meta({ description: 'UTC, to the microsecond.' }),
      user: z.string(),
      address: z.string(),
      action: z.string(),
      objectType: z.string(),
      objectId: z.string(),
      object: z.string(),
      environmentId: z.number().int().nullable().meta({ description: 'Null for what concerns no environment (a sign-in, a token).' }),
      changes: z.unknown(),
    }),
  })
  .meta({ id: 'AuditLine' });

export const auditExportRoute = defineRoute({
  method: 'get',
  path: '/api/v1/audit/export',
  tag: 'Audit',
  summary: 'The audit log as JSON lines, with its hash chain',
  description:
    "Every sealed audit entry whose time is in the range, one JSON object a line (application/x-ndjson), in the order of the chain, streamed. Entries are sealed within seconds of their commit (the worker's audit.seal chore). Each line's hash covers the hash before it, so a changed entry, one taken out or one put in shows: recompute each hash, and check each line's prevHash is the hash of the line before it (a seq missing is a gap). Entries of the environments where the caller is a viewer; those of no environment (sign-ins, tokens) to global viewers alone, so only a global viewer's export has no gap by design.",
  auth: 'read',
  query: auditExportQuery,
  responses: { 200: { description: 'The entries, one AuditLine a line.', schema: auditLine, contentType: 'application/x-ndjson' } },
  errors: {},
});
