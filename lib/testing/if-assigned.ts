/**
 * What a `beforeAll` assigns (`let t: TestDb;`) is still unset in `afterAll` when that `beforeAll`
 * failed part-way, though its type says it is always there: cleanups read it through this, so that a
 * failed setup is reported as itself and not as a TypeError in the cleanup.
 */
export const ifAssigned = <T>(value: T): T | undefined => value;
