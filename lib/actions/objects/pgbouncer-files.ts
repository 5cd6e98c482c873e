// The shell commands that change a PgBouncer's files over SSH for a rotation: a user's line of its
// auth_file (Rotate pgherd's credentials: the admin user's verifier; Rotate credentials: the auth user's
// password), and the auth_user its configuration names. Secrets come on standard input, never in argv;
// each file (a link's target) is written whole beside itself, its owner and mode kept, and renamed into
// place, so PgBouncer reads the old file or the new one at its next RELOAD.

/**
 * The [pgbouncer] section's name as PgBouncer reads it: the text between the brackets, case aside, with
 * anything after the closing bracket (a comment) ignored.
 */
const AWK_SECTION =
  'function section(l) { if (l !~ /^[[:space:]]*\\[/) return ""; sub(/^[[:space:]]*\\[[[:space:]]*/, "", l); sub(/[[:space:]]*\\].*$/, "", l); return tolower(l) } ';

/**
 * Finds into `$f` the auth_file the [pgbouncer] section of configuration `$ini` names (a link: its target),
 * or exits 3 saying why: none, a relative path (PgBouncer reads it from its working directory, which pgherd
 * cannot know), or no such file.
 */
const FIND_AUTH_FILE =
  'ini=$(readlink -f -- "$ini") || exit 3; ' +
  `f=$(awk '${AWK_SECTION}` +
  '{ s = section($0); if (s != "") { sec = s; next } } ' +
  'sec == "pgbouncer" && /^[[:space:]]*auth_file[[:space:]]*=/ { v = $0; sub(/^[^=]*=[[:space:]]*/, "", v); sub(/[[:space:]]*$/, "", v); f = v } ' +
  'END { print f }\' "$ini"); ' +
  '[ -n "$f" ] || { echo "$ini names no auth_file in its [pgbouncer] section" >&2; exit 3; }; ' +
  'case $f in /*) ;; *) echo "$ini: auth_file $f is relative (PgBouncer reads it from its working directory): give its absolute path" >&2; exit 3;; esac; ' +
  'f=$(readlink -f -- "$f") && [ -f "$f" ] || { echo "$f: no such file (the auth_file of $ini)" >&2; exit 3; }; ';

/** Writes the lines of `$f` but user `$u`'s (then whatever follows) into `$f` whole, through a copy renamed over it. */
const rewriteAuthFile = (then: string) =>
  't="$f.pgherd-new"; rm -f "$t"; cp -p "$f" "$t" || exit 3; ' + `{ awk -v u="\\"$u\\"" '$1 != u' "$f"; ${then} } > "$t" && mv "$t" "$f"`;

/** Sets user `$2`'s line of the auth_file of configuration `$1` to the verifier on stdin, the other lines kept. */
export const SET_USERLIST = [
  'sh',
  '-c',
  'ini=$1; u=$2; IFS= read -r v || [ -n "$v" ] || exit 3; ' + FIND_AUTH_FILE + rewriteAuthFile('printf "\\"%s\\" \\"%s\\"\\n" "$u" "$v";'),
  'pgherd-set-userlist',
];

/**
 * SET_USERLIST for a password in the clear (PgBouncer's auth user, which it logs in with): refused, the
 * file unchanged, when every user of the host may read the auth_file.
 */
export const SET_USERLIST_PLAIN = [
  'sh',
  '-c',
  'ini=$1; u=$2; IFS= read -r v || [ -n "$v" ] || exit 3; ' +
    FIND_AUTH_FILE +
    'case $(stat -c %a "$f") in *[4567]) echo "$f is readable by every user of the host: pgherd writes no password there (chmod o-rwx it)" >&2; exit 3;; esac; ' +
    rewriteAuthFile('printf "\\"%s\\" \\"%s\\"\\n" "$u" "$v";'),
  'pgherd-set-userlist',
];

/** Takes user `$2`'s line out of the auth_file of configuration `$1`. */
export const DROP_USERLIST = ['sh', '-c', 'ini=$1; u=$2; ' + FIND_AUTH_FILE + rewriteAuthFile(':;'), 'pgherd-drop-userlist'];

/**
 * Sets `auth_user = $2` in the [pgbouncer] section of configuration `$1` (its first such section; one there
 * replaced, or added at the section's end; any later one taken out, as it would win); refuses a
 * configuration without that section, unchanged.
 */
export const SET_AUTH_USER = [
  'sh',
  '-c',
  'ini=$(readlink -f -- "$1") || exit 3; u=$2; t="$ini.pgherd-new"; rm -f "$t"; cp -p "$ini" "$t" || exit 3; ' +
    `awk -v u="$u" '${AWK_SECTION}` +
    'function put() { if (!done) { print "auth_user = " u; done = 1 } } ' +
    '{ s = section($0); if (s != "") { if (sec == "pgbouncer") put(); sec = s; if (s == "pgbouncer") seen = 1 } } ' +
    'sec == "pgbouncer" && /^[[:space:]]*auth_user[[:space:]]*=/ { put(); next } ' +
    '{ print } END { if (sec == "pgbouncer") put(); if (!seen) exit 3 }\' "$ini" > "$t" ' +
    '|| { rm -f "$t"; echo "$ini has no [pgbouncer] section" >&2; exit 3; }; mv "$t" "$ini"',
  'pgherd-set-auth-user',
];
