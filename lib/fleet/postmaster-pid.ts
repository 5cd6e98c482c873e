// What a running postmaster writes in its data directory's postmaster.pid (PostgreSQL 10 and later):
// its PID, the data directory, its start time, the port, the first socket directory, the first listen
// address, the shared memory key and its status. The host reads it without a connection to Postgres:
// a restart over SSH proves with it which server it acts on and that a new postmaster replaced the old.

export interface PostmasterPid {
  pid: number;
  dataDirectory: string;
  /** Seconds since the epoch, by the host's clock. */
  startedAt: number;
  port: number;
  /** The first of listen_addresses: `*` for every address, empty for none (sockets only). */
  listenAddress: string;
  /** `starting`, `stopping`, `ready` or `standby` (empty before PostgreSQL 10). */
  status: string;
}

/** The file's fields, or null when it is not one a postmaster wrote (missing, cut short, not numbers). */
export function parsePostmasterPid(text: string): PostmasterPid | null {
  const lines = text.split('\n');
  const [pid, dir, start, port] = [Number(lines[0]), lines[1] ?? '', Number(lines[2]), Number(lines[3])];
  if (!Number.isSafeInteger(pid) || pid <= 0 || !dir.startsWith('/')) return null;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(port) || port <= 0 || port > 65535) return null;
  return { pid, dataDirectory: dir, startedAt: start, port, listenAddress: (lines[5] ?? '').trim(), status: (lines[7] ?? '').trim() };
}

const normal = (p: string) => p.replace(/\/+$/, '') || '/';

/**
 * Whether the file proves that the server running on `t`'s recorded data directory is the one at
 * `t.host:t.port`: it runs from that directory, on that port, listening on that very address. Anything
 * else proves nothing: `*` (a second server with `*` on a port another holds on IPv4 still starts, on
 * IPv6 alone, and writes `*` too), a host name where the file has an address, a second listen address
 * not written there: false, and the caller asks Postgres at the address which directory it runs from.
 */
export function servesAddress(f: PostmasterPid, t: { host: string; port: number; dataDirectory: string }): boolean {
  if (normal(f.dataDirectory) !== normal(t.dataDirectory) || f.port !== t.port) return false;
  return f.listenAddress === t.host;
}
