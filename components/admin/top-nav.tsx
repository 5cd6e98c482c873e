'use client';

import Link from 'next/link';
import { usePathname } from 'next/navigation';
import { useEffect, useRef, useState, type KeyboardEvent, type MouseEvent } from 'react';

const under = (pathname: string, href: string) => pathname === href || pathname.startsWith(`${href}/`);

/**
 * The top bar's groups (lib/features/admin/app-list.ts), a menu each so that the bar keeps to one
 * line: one menu open at a time, closed by Escape, a click elsewhere or following one of its links (the
 * layout, and this bar, stay mounted from page to page). A group of one link is that link.
 */
export function TopNav({ groups }: { groups: { name: string; label: string; links: { label: string; href: string }[] }[] }) {
  const pathname = usePathname();
  const [open, setOpen] = useState<string | null>(null);
  const nav = useRef<HTMLElement>(null);
  useEffect(() => {
    if (open === null) return;
    const away = (e: PointerEvent) => {
      if (e.target instanceof Node && !nav.current?.contains(e.target)) setOpen(null);
    };
    document.addEventListener('pointerdown', away);
    return () => {
      document.removeEventListener('pointerdown', away);
    };
  }, [open]);
  const onKeyDown = (e: KeyboardEvent<HTMLElement>) => {
    if (e.key !== 'Escape' || open === null) return;
    nav.current?.querySelector<HTMLButtonElement>(`button[aria-controls="nav-${open}"]`)?.focus();
    setOpen(null);
  };
  const onLink = (e: MouseEvent<HTMLElement>) => {
    if (e.target instanceof Element && e.target.closest('a')) setOpen(null);
  };
  return (
    <nav className="top-nav" aria-label="Console" ref={nav} onKeyDown={onKeyDown}>
      <ul>
        {groups.map((g) => {
          const current = g.links.some((l) => under(pathname, l.href));
          const [only] = g.links;
          if (only && g.links.length === 1)
            return (
              <li key={g.name} data-group={g.name}>
                <Link
                  href={only.href}
                  className={current ? 'current' : undefined}
                  aria-current={pathname === only.href ? 'page' : undefined}
                >
                  {g.label}
                </Link>
              </li>
            );
          return (
            <li key={g.name} data-group={g.name}>
              <button
                type="button"
                aria-expanded={open === g.name}
                aria-controls={`nav-${g.name}`}
                className={current ? 'current' : undefined}
                onClick={() => {
                  setOpen(open === g.name ? null : g.name);
                }}
              >
                {g.label}
              </button>
              <ul id={`nav-${g.name}`} hidden={open !== g.name} onClick={onLink}>
                {g.links.map((l) => (
                  <li key={l.href}>
                    <Link href={l.href} aria-current={pathname === l.href ? 'page' : undefined}>
                      {l.label}
                    </Link>
                  </li>
                ))}
              </ul>
            </li>
          );
        })}
      </ul>
    </nav>
  );
}
