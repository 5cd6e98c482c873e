-- Read in each database of blue's primary (not pgherd's). Its user tables, in each count below: tables and
-- partitioned tables, not partitions, outside the catalogs, TOAST and pgherd's own schema.
SELECT (SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgherd') AND n.nspname !~ '^pg_toast') AS tables,
       (SELECT coalesce(array_agg(format('%I.%I', n.nspname, c.relname) ORDER BY 1), '{}') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgherd') AND n.nspname !~ '^pg_toast'
           AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))) AS no_identity,
       (SELECT coalesce(array_agg(format('%I.%I.%I (%s)', n.nspname, c.relname, a.attname, t.typname) ORDER BY 1), '{}')
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgherd') AND n.nspname !~ '^pg_toast' AND a.attnum > 0 AND NOT a.attisdropped
           AND t.typname IN ('regproc', 'regprocedure', 'regoper', 'regoperator', 'regclass', 'regtype', 'regconfig', 'regdictionary',
                             'regnamespace', 'regrole', 'regcollation')) AS reg_columns,
       (SELECT count(*)::int FROM pg_largeobject_metadata) AS large_objects,
       (SELECT count(*)::int FROM pg_sequences WHERE schemaname <> 'pgherd') AS sequences,
       (SELECT coalesce(json_agg(json_build_object('name', extname, 'version', extversion) ORDER BY extname), '[]') FROM pg_extension) AS extensions
