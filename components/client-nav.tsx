'use client';

import { useRouter } from 'next/navigation';
import type { MouseEvent, ReactNode } from 'react';

/**
 * Client-side navigation for the plain links inside an element, with one handler: a changelist draws
 * hundreds of links (a row's object, its herd, every facet option), and a next/link each costs the
 * server a client component to render per link. A click that the browser would handle itself
 * (another tab, a download, another site, a modifier key) is left to it.
 */
export function useLinkClicks(): (e: MouseEvent<HTMLElement>) => void {
  const router = useRouter();
  return (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = e.target instanceof Element ? e.target.closest('a') : null;
    if (!a || !e.currentTarget.contains(a) || (a.target && a.target !== '_self') || a.hasAttribute('download')) return;
    const url = new URL(a.href, window.location.href);
    if (url.origin !== window.location.origin) return;
    e.preventDefault();
    router.push(url.pathname + url.search + url.hash);
  };
}

/** A box whose plain links navigate on the client (the links stay the focusable, keyboard-operable elements). */
export function ClientNav({ children, className, label }: { children: ReactNode; className?: string; label?: string }) {
  const onClick = useLinkClicks();
  return (
    <aside className={className} aria-label={label} onClick={onClick}>
      {children}
    </aside>
  );
}
