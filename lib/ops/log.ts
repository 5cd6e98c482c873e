// One JSON line per event, for the worker and the web process's queue handle.

export function logLine(event: string, fields: object = {}) {
  console.log(JSON.stringify({ at: new Date().toISOString(), event, ...fields }));
}

/** The same event at most once per `ms` (with how many were left out), so an outage does not flood the log. */
export function throttled(log: (e: string, f: object) => void, ms: number) {
  const last = new Map<string, { at: number; skipped: number }>();
  return (event: string, fields: object) => {
    const seen = last.get(event);
    if (seen && Date.now() - seen.at < ms) return void seen.skipped++;
    log(event, { ...fields, ...(seen?.skipped ? { repeated: seen.skipped } : {}) });
    last.set(event, { at: Date.now(), skipped: 0 });
  };
}
