// What the benchmarks print: percentiles of timings, and tables with a label column and right-aligned figures.

/** The p50 and p95 of `ms` (nearest rank). */
export function percentiles(ms: number[]): { p50: number; p95: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? NaN;
  return { p50: at(0.5), p95: at(0.95) };
}

/** Lines of a table: the first column left-aligned, the others right-aligned, widths from the contents. */
export function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [head, ...rows].map(line);
}
