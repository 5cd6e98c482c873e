// Characters that make one name look like another on screen, hide in it, or break a line where none
// shows: C0/C1 controls (line breaks included), Unicode's line and paragraph separators, its
// direction marks and overrides, and invisible characters (zero-width space, joiners, word joiner,
// byte order mark, soft hyphen). Names refuse all of them; free text may break lines.
const CONTROL = /[\u0000-\u001F\u007F-\u009F\u2028\u2029]/;
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000B-\u001F\u007F-\u009F\u2028\u2029]/;
const BIDI = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/;
const INVISIBLE = /[\u00AD\u200B-\u200D\u2060\uFEFF]/;

export const NO_TRICKS = 'Control characters, line breaks, invisible characters and text-direction marks are not allowed.';

/** A name, a label, a path: nothing that hides or rearranges what the screen shows. */
export const isPlainName = (v: string) => !CONTROL.test(v) && !BIDI.test(v) && !INVISIBLE.test(v);

/** Free text (a description): line breaks are fine, the rest as for names. */
export const isPlainText = (v: string) => !CONTROL_BUT_NEWLINE.test(v) && !BIDI.test(v) && !INVISIBLE.test(v);
