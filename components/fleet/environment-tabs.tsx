import Link from 'next/link';
import type { EnvironmentChoice } from '@/lib/features/auth/environment-choice';

/** One link an environment, the shown one in bold: `href` gives a page's address for an environment id. */
export function EnvironmentTabs({ choice, href }: { choice: EnvironmentChoice; href: (id: number) => string }) {
  return (
    <p>
      {choice.environments.map((e, k) => (
        <span key={e.id}>
          {k > 0 && ' · '}
          {e.id === choice.chosen?.id ? <strong>{e.name}</strong> : <Link href={href(e.id)}>{e.name}</Link>}
        </span>
      ))}
    </p>
  );
}
