// Whole-number settings from the environment: the default when unset or empty, a clear error otherwise.

/** A whole number in [min, max] from `env[name]`, or `fallback`; anything else throws, naming the setting and the value. */
export function intSetting(
  name: string,
  fallback: number,
  min: number,
  max: number,
  env: Record<string, string | undefined> = process.env,
): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`${name} must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  return n;
}
