// A rule's scope and schedule in words, as the console's lists show them.
import { fireTimeText, type Schedule } from './cron';

export function scopeWords(scope: Record<string, unknown>): string {
  const list = (ids: unknown, what: string) => {
    const a = Array.isArray(ids) ? (ids as number[]) : [];
    return `${a.length} ${what}${a.length === 1 ? '' : 's'} (${a
      .slice(0, 5)
      .map((i) => `#${String(i)}`)
      .join(', ')}${a.length > 5 ? ', …' : ''})`;
  };
  if ('instanceIds' in scope) return list(scope.instanceIds, 'instance');
  if ('herdIds' in scope) return list(scope.herdIds, 'herd');
  if ('reverseOf' in scope) return `what rule #${String(scope.reverseOf)} changed and is not back yet`;
  return `filter: ${String(scope.filter)}`;
}

export function scheduleWords(s: Schedule | null): string {
  if (!s) return 'its stored schedule does not read: it fires never';
  if ('at' in s) return `once, ${fireTimeText(new Date(s.at), 'UTC')}`;
  return `${s.cron.map((c) => `“${c}”`).join(' and ')} (${s.timezone})`;
}

/** The time zone a schedule's times are read in (a one-time rule's, and one that does not read: UTC). */
export const zoneOf = (s: Schedule | null): string => (s && 'timezone' in s ? s.timezone : 'UTC');
