// Where pgherd may send Patroni's REST credentials: only to the member's own server. TLS proves the
// host, never the port, so the host is compared exactly (a first label or a prefix could be anyone's
// host) and the scheme must be https; which port is the member's Patroni is for its peers to confirm
// (lib/actions/drivers/patroni/steps.ts).

/** A host as compared: lower case, no trailing dot, no IPv6 brackets. */
export const normalHost = (h: string) =>
  h
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');

/**
 * Why `url` cannot be the REST address of a member on `host` (its server's address, else its host
 * name), or null when it can: https, that host exactly, a port at most, nothing else.
 */
export function restUrlProblem(url: string, host: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `${url} is not an address such as https://${host}:8008`;
  }
  if (u.protocol !== 'https:')
    return `${url} is not https: pgherd sends Patroni's credentials only over TLS verified against the environment's CA`;
  if (u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash)
    return `${url} has more than a host and a port (https://${host}:8008)`;
  if (!host || normalHost(u.hostname) !== normalHost(host))
    return `${url} names ${u.hostname}, not this instance's server (${host || 'no address'}): a member's Patroni is on its own server`;
  return null;
}
