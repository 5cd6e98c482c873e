// The timeline an instance is on, as one SQL expression that the worker's observer and the agent share.
//
// pg_control_checkpoint() alone is wrong in both roles: a primary's checkpoint keeps the old timeline
// until its first checkpoint after a promote, and a replica's is that of its last restartpoint, which
// can stay on the old timeline long after it has followed a new primary (a replica re-pointed during a
// DR failover reported timeline 1 while it streamed the timeline-2 primary). So: a primary's is the
// timeline of the WAL file it writes now; a replica's is the highest of what it receives (the WAL
// receiver, while there is one), the WAL files it holds (once its upstream is gone, the receiver is
// too) and its last restartpoint. pg_ls_waldir() needs superuser or pg_monitor: without them the
// WAL files are not counted, and nothing fails.
export const TIMELINE_SQL = `(CASE WHEN NOT pg_is_in_recovery()
    THEN ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int
    ELSE greatest(
      (SELECT timeline_id FROM pg_control_checkpoint()),
      (SELECT received_tli FROM pg_stat_wal_receiver LIMIT 1),
      CASE WHEN has_function_privilege('pg_ls_waldir()', 'EXECUTE') THEN
        (SELECT max(('x' || substr(name, 1, 8))::bit(32)::int) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$') END)
  END)`;
