// The environment's CA as PEM text, for a file on a host whose libpq verifies a server with it, and how
// that file is written there (~/.pgherd/ca-<digest>.crt of the SSH user, the PEM on stdin).
import { createHash } from 'node:crypto';
import type { ConnectionOptions } from 'node:tls';

/** The file's name on the host: the same CA, the same file, whoever writes it. */
export const caFileName = (pem: string) => `ca-${createHash('sha256').update(pem).digest('hex').slice(0, 16)}.crt`;

/** Shell that writes stdin to ~/.pgherd/$1 whole (a reader never sees half a file) and leaves its path in $f. */
export const WRITE_CA_SH = 'umask 022; mkdir -p "$HOME/.pgherd"; f="$HOME/.pgherd/$1"; cat > "$f.part"; mv -f "$f.part" "$f"';

/** The CA the environment's TLS options verify with (null: no TLS, or the system's CAs, which sign for anyone's name). */
export function caPemOf(tls: ConnectionOptions | null): string | null {
  if (!tls) return null;
  const ca = tls.ca;
  if (ca === undefined) return null;
  const list = Array.isArray(ca) ? ca : [ca];
  const text = list.map((c) => (typeof c === 'string' ? c : Buffer.from(c).toString('utf8'))).join('\n');
  return text.trim() ? `${text.trim()}\n` : null;
}
