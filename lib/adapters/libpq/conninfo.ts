// libpq connection strings ("keyword = value" form), the one builder pgherd has: every value quoted,
// its quotes and backslashes escaped, so a value (an address, a database name, a password where one
// must be written) can never add a keyword of its own.

/** A conninfo value, quoted for every byte. */
export const conninfoValue = (v: string): string => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** A whole connection string from its words, in their order, each value quoted. */
export const conninfo = (words: Record<string, string | number>): string =>
  Object.entries(words)
    .map(([k, v]) => `${k}=${conninfoValue(String(v))}`)
    .join(' ');
