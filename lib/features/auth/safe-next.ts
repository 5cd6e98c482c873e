// Where to go after sign-in: only ever a path on this console. "/\evil.example", "/\t/evil.example"
// and "//evil.example" all start with a slash and all lead off-site once a browser has read them.
const BASE = 'http://pgherd.invalid';

export function safeNext(raw: unknown): string {
  if (typeof raw !== 'string' || !raw.startsWith('/') || raw.length > 2000 || /[\u0000-\u001F\u007F\\]/.test(raw)) return '/';
  try {
    const u = new URL(raw, BASE);
    return u.origin === BASE && !u.pathname.startsWith('//') ? `${u.pathname}${u.search}${u.hash}` : '/';
  } catch {
    return '/';
  }
}
