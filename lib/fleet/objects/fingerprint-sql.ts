// The refresh's cheap signal that a primary's objects may have changed (lib/fleet/objects/objects-pass.ts).
/**
 * The observation's column: a digest of a primary's roles, memberships and databases (null on a
 * replica: it has its primary's). pg_roles, not pg_authid: any role may read it (RDS's master user too).
 */
export const OBJECTS_FINGERPRINT_SQL = `CASE WHEN NOT pg_is_in_recovery() THEN md5(concat_ws('|',
  (SELECT string_agg(concat_ws(',', oid, rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,
                     rolbypassrls, rolconnlimit, rolvaliduntil), ';' ORDER BY oid) FROM pg_roles),
  (SELECT string_agg(concat_ws(',', roleid, member), ';' ORDER BY roleid, member) FROM pg_auth_members),
  (SELECT string_agg(concat_ws(',', oid, datname, datdba, datacl), ';' ORDER BY oid) FROM pg_database))) END`;
