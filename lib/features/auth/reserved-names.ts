// Names pgherd writes for itself where a person's name goes: operations and audit entries requested
// by `system` (the worker, Patroni's follower), `rule: <name>` (a rule's fire) and `schedule` (a
// discovery pass nobody asked for). A person with such a name would pass for pgherd in every record
// and list that shows who acted, so no account may have one, however it is spelled.

/** The name as it is compared: compatibility forms folded, spaces and invisible characters dropped, lower case. */
const comparable = (name: string) =>
  name
    .normalize('NFKC')
    .replace(/[\s\p{Cc}\p{Cf}\p{Z}]/gu, '')
    .toLowerCase();

const RESERVED = new Set(['system', 'schedule']);
const RESERVED_PREFIX = 'rule:';

export function isReservedName(name: string): boolean {
  const n = comparable(name);
  return RESERVED.has(n) || n.startsWith(RESERVED_PREFIX);
}

/** An account refused its name: pgherd uses it for itself. */
export class ReservedNameError extends Error {
  constructor(readonly username: string) {
    super(`"${username}" is a name pgherd uses for itself (system, schedule, rule: ...): no account may have it`);
    this.name = 'ReservedNameError';
  }
}

/** Throws ReservedNameError for a name pgherd uses for itself. */
export function refuseReservedName(name: string): void {
  if (isReservedName(name)) throw new ReservedNameError(name);
}
