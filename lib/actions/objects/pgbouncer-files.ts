// The shell commands that change a PgBouncer's files over SSH for a rotation: a user's line of its
// auth_file (Rotate pgherd's credentials: the admin user's verifier; Rotate credentials: the auth user's
// password), and the auth_user its configuration names. Secrets come on standard input, never in argv;
// each file is written whole beside itself, its owner and mode kept, and renamed into place, so PgBouncer
// reads the old file or the new one at its next RELOAD.

/** Finds the auth_file the configuration `$ini` names (relative: beside it) into `$f`, or exits 3 saying why. */
const FIND_AUTH_FILE =
  'f=$(sed -n "s/^[[:space:]]*auth_file[[:space:]]*=[[:space:]]*//p" "$ini" | tail -n 1 | sed "s/[[:space:]]*$//"); ' +
  '[ -n "$f" ] || { echo "$ini has no auth_file" >&2; exit 3; }; case $f in /*) ;; *) f="$(dirname "$ini")/$f";; esac; ' +
  '[ -f "$f" ] || { echo "$f: no such file (the auth_file of $ini)" >&2; exit 3; }; ';

/** Writes the lines of `$f` but user `$u`'s (then whatever follows) into `$f` whole, through a copy renamed over it. */
const rewriteAuthFile = (then: string) =>
  't="$f.pgherd-new"; rm -f "$t"; cp -p "$f" "$t" || exit 3; ' + `{ awk -v u="\\"$u\\"" '$1 != u' "$f"; ${then} } > "$t" && mv "$t" "$f"`;

/** Sets user `$2`'s line of the auth_file of configuration `$1` to the secret on stdin (a verifier or a password), the other lines kept. */
export const SET_USERLIST = [
  'sh',
  '-c',
  'ini=$1; u=$2; IFS= read -r v || [ -n "$v" ] || exit 3; ' + FIND_AUTH_FILE + rewriteAuthFile('printf "\\"%s\\" \\"%s\\"\\n" "$u" "$v";'),
  'pgherd-set-userlist',
];

/** Takes user `$2`'s line out of the auth_file of configuration `$1`. */
export const DROP_USERLIST = ['sh', '-c', 'ini=$1; u=$2; ' + FIND_AUTH_FILE + rewriteAuthFile(':;'), 'pgherd-drop-userlist'];

/**
 * Sets `auth_user = $2` in the [pgbouncer] section of configuration `$1` (replacing the one there, or added
 * at the section's end); refuses a configuration without that section.
 */
export const SET_AUTH_USER = [
  'sh',
  '-c',
  'ini=$1; u=$2; grep -q "^[[:space:]]*\\[pgbouncer\\]" "$ini" || { echo "$ini has no [pgbouncer] section" >&2; exit 3; }; ' +
    't="$ini.pgherd-new"; rm -f "$t"; cp -p "$ini" "$t" || exit 3; ' +
    'awk -v u="$u" \'' +
    'function put() { if (!done) { print "auth_user = " u; done = 1 } } ' +
    '/^[[:space:]]*\\[/ { if (sec == "pgbouncer") put(); sec = $0; gsub(/[][[:space:]]/, "", sec) } ' +
    'sec == "pgbouncer" && /^[[:space:]]*auth_user[[:space:]]*=/ { put(); next } ' +
    '{ print } END { if (sec == "pgbouncer") put() }\' "$ini" > "$t" && mv "$t" "$ini"',
  'pgherd-set-auth-user',
];
