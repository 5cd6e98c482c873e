// The environment's CA as PEM text, for a file on a host whose libpq verifies a server with it.
import type { ConnectionOptions } from 'node:tls';

/** The CA the environment's TLS options verify with (null: no TLS, or the system's CAs, which sign for anyone's name). */
export function caPemOf(tls: ConnectionOptions | null): string | null {
  if (!tls) return null;
  const ca = tls.ca;
  if (ca === undefined) return null;
  const list = Array.isArray(ca) ? ca : [ca];
  const text = list.map((c) => (typeof c === 'string' ? c : Buffer.from(c).toString('utf8'))).join('\n');
  return text.trim() ? `${text.trim()}\n` : null;
}
