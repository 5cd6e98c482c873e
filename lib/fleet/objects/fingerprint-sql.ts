// The refresh's cheap signal that a primary's objects may have changed (lib/fleet/objects/objects-pass.ts).
/**
 * The observation's column: a digest of a primary's roles, memberships and databases (null on a
 * replica: it has its primary's). pg_roles, not pg_authid: any role may read it (RDS's master user too).
 * Passwords (pg_authid's verifiers, for a password changed behind pgherd's back) only where this role may
 * read pg_authid: through query_to_xml, whose query is checked only when it runs, so that a role without
 * the privilege (RDS's master user) still gets the rest.
 */
export const OBJECTS_FINGERPRINT_SQL = `CASE WHEN NOT pg_is_in_recovery() THEN md5(concat_ws('|',
  (SELECT string_agg(concat_ws(',', oid, rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,
                     rolbypassrls, rolconnlimit, rolvaliduntil), ';' ORDER BY oid) FROM pg_roles),
  (SELECT string_agg(concat_ws(',', roleid, member), ';' ORDER BY roleid, member) FROM pg_auth_members),
  (SELECT string_agg(concat_ws(',', oid, datname, datdba, datacl), ';' ORDER BY oid) FROM pg_database),
  CASE WHEN has_table_privilege('pg_catalog.pg_authid', 'SELECT') THEN md5(query_to_xml(
    'SELECT md5(string_agg(concat_ws('','', oid, rolpassword), '';'' ORDER BY oid)) AS p FROM pg_catalog.pg_authid', false, false, '')::text) END)) END`;
