// Display formatting for changelist cells: pure, so pages and tests share it.
import type { Format } from './define-admin';
import { formatBytes, formatLsn } from '@/lib/adapters/format/units';
import { valueText } from './text';

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
      const d = v instanceof Date ? v : new Date(valueText(v));
      return Number.isNaN(d.getTime()) ? valueText(v) : d.toISOString().replace('T', ' ').slice(0, 19) + 'Z';
    }
    case 'bool':
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- v is `{}` here, which includes false and 0: the rule takes it for always truthy
      return v ? 'yes' : 'no';
    default:
      return valueText(v);
  }
}
