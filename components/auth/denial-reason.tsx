'use client';

import { useEffect, useState } from 'react';

/** The 403 page's message: the user's latest refusal, as the page that refused recorded it. */
export function DenialReason() {
  const [message, setMessage] = useState<string | null>(null);
  useEffect(() => {
    fetch('/api/me/denial', { cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : { message: null }))
      .then((b: { message: string | null }) => setMessage(b.message))
      .catch(() => undefined);
  }, []);
  return (
    <p className="errornote" role="alert" data-forbidden>
      {message ? `${message}.` : 'Your roles do not allow this.'} Nothing has been changed.
    </p>
  );
}
