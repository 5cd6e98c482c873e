// Display formatting for changelist cells: pure, so pages and tests share it.
import type { Format } from './define-admin';

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '';
  const abs = Math.abs(n);
  if (abs < 1024) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB', 'PB'];
  let v = abs / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${n < 0 ? '-' : ''}${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[u] ?? 'B'}`;
}

/** bytes -> Postgres LSN text, '16/B374D848' */
/** "45 s", "3 min", "2 h 5 min", "4 d 1 h": a duration, to the two largest units that matter. */
export function formatDuration(seconds: number): string {
  if (seconds < 120) return `${Math.max(0, Math.floor(seconds))} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h${m % 60 ? ` ${m % 60} min` : ''}`;
  return `${Math.floor(h / 24)} d${h % 24 ? ` ${h % 24} h` : ''}`;
}

export function formatLsn(n: number): string {
  const hi = Math.floor(n / 2 ** 32);
  const lo = n - hi * 2 ** 32;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

/** A value as text: node-postgres gives strings, numbers, booleans, Dates and arrays of these; other objects as JSON. */
function plainText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.map(plainText).join(',');
  if (v instanceof Date) return v.toString();
  return JSON.stringify(v);
}

export function formatValue(format: Format | undefined, v: unknown): string {
  if (v === null || v === undefined) return '';
  switch (format) {
    case 'bytes':
      return formatBytes(Number(v));
    case 'lsn':
      return formatLsn(Number(v));
    case 'seconds':
      return Number(v).toFixed(Number(v) < 10 ? 1 : 0);
    case 'datetime': {
      const d = v instanceof Date ? v : new Date(plainText(v));
      return Number.isNaN(d.getTime()) ? plainText(v) : d.toISOString().replace('T', ' ').slice(0, 19) + 'Z';
    }
    case 'bool':
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- v is `{}` here, which includes false and 0: the rule takes it for always truthy
      return v ? 'yes' : 'no';
    default:
      return plainText(v);
  }
}
