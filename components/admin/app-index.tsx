import Link from 'next/link';
import type { AppGroup } from '@/lib/features/admin/app-list';

/** Every group of the console with its links (and Add where the user may add), as Django's admin index lists apps and models. */
export function AppIndex({ groups }: { groups: AppGroup[] }) {
  return (
    <div className="app-index" data-testid="app-index">
      {groups.map((g) => (
        <table key={g.name} className="module" data-group={g.name}>
          <caption>{g.label}</caption>
          <tbody>
            {g.links.map((l) => (
              <tr key={l.href}>
                <th scope="row">
                  <Link href={l.href}>{l.label}</Link>
                </th>
                <td>
                  {l.addHref && (
                    <Link href={l.addHref} className="addlink" aria-label={l.addLabel}>
                      Add
                    </Link>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ))}
    </div>
  );
}
