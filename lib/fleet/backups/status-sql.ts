// A herd's backups as the changelists, fleet health and the metrics read them, in SQL over its rows:
// what Configure backups applied, the backups the repository lists, and its primary's archiving.
import { sql, type SQL } from 'drizzle-orm';

/** A herd's standing, worst first: what the changelist's Backups facet offers. */
export const BACKUP_STATUSES = [
  'archive failing',
  'archive lagging',
  'no backup in 7 days',
  'no backup in 1 day',
  'ok',
  'not configured',
] as const;
export type BackupStatus = (typeof BACKUP_STATUSES)[number];

/** "12 min ago", "5 h ago", "3 d ago", "never". */
export const ago = (x: SQL) => sql<string>`CASE WHEN ${x} IS NULL THEN 'never'
  WHEN now() - ${x} < interval '1 hour' THEN floor(extract(epoch FROM now() - ${x}) / 60)::int || ' min ago'
  WHEN now() - ${x} < interval '2 days' THEN floor(extract(epoch FROM now() - ${x}) / 3600)::int || ' h ago'
  ELSE floor(extract(epoch FROM now() - ${x}) / 86400)::int || ' d ago' END`;

const lastBackup = (herdId: SQL, types: string) =>
  sql`(SELECT max(b.stopped_at) FROM backups b WHERE b.herd_id = ${herdId} AND b.gone_at IS NULL AND b.type::text IN (${sql.raw(types)}))`;

/** Its primary's archiving is failing: the last failure came after the last success. */
export const archiveFailing = (herdId: SQL) => sql`EXISTS (SELECT 1 FROM instances i WHERE i.herd_id = ${herdId} AND i.role = 'primary'
  AND i.last_archive_failed_at IS NOT NULL AND (i.last_archived_at IS NULL OR i.last_archive_failed_at > i.last_archived_at))`;

/** Written WAL has waited for the archive longer than twice the archive_timeout the policy set (60 s if none). */
export const archiveLagging = (herdId: SQL) => sql`EXISTS (SELECT 1 FROM instances i WHERE i.herd_id = ${herdId} AND i.role = 'primary'
  AND i.archive_pending_since < now() - 2 * make_interval(secs => coalesce(
    (SELECT (s.applied->>'archiveTimeoutSeconds')::int FROM herd_backup_setups s WHERE s.herd_id = ${herdId}), 60)))`;

/** One of BACKUP_STATUSES. */
export const backupStatusSql = (herdId: SQL) => sql<BackupStatus>`CASE
  WHEN NOT EXISTS (SELECT 1 FROM herd_backup_setups s WHERE s.herd_id = ${herdId}) THEN 'not configured'
  WHEN ${archiveFailing(herdId)} THEN 'archive failing'
  WHEN ${archiveLagging(herdId)} THEN 'archive lagging'
  WHEN coalesce(${lastBackup(herdId, "'full', 'diff', 'incr'")} < now() - interval '7 days', true) THEN 'no backup in 7 days'
  WHEN ${lastBackup(herdId, "'full', 'diff', 'incr'")} < now() - interval '1 day' THEN 'no backup in 1 day'
  ELSE 'ok' END`;

/** The changelist's Backups column: "full 3 h ago · incr 12 min ago · archive 4 s behind". */
export const backupSummarySql = (herdId: SQL) => sql<string>`CASE
  WHEN NOT EXISTS (SELECT 1 FROM herd_backup_setups s WHERE s.herd_id = ${herdId}) THEN 'not configured'
  ELSE 'full ' || ${ago(lastBackup(herdId, "'full'"))} || ' \u00b7 incr ' || ${ago(lastBackup(herdId, "'diff', 'incr'"))}
    || CASE WHEN ${archiveFailing(herdId)} THEN ' \u00b7 ARCHIVE FAILING'
            ELSE coalesce((SELECT ' \u00b7 archive ' || floor(extract(epoch FROM now() - i.archive_pending_since))::int || ' s behind'
                           FROM instances i WHERE i.herd_id = ${herdId} AND i.role = 'primary' AND i.archive_pending_since IS NOT NULL LIMIT 1),
                          ' \u00b7 archive current') END
  END`;
