// A row's one-button form: the server action it posts to receives the row's id (a hidden `id` field), as
// Revoke, Lift, Remove, Pause or Cancel do. Server-rendered or inside a client component alike; no state.
import type { ReactNode } from 'react';

export function IdButton({
  action,
  id,
  children,
  title,
  quiet = false,
}: {
  action: (form: FormData) => void | Promise<void>;
  id: string | number;
  children: ReactNode;
  /** What pressing it does, when its label does not say all of it. */
  title?: string;
  /** A button that undoes or removes, drawn as a link (`cancel-link`). */
  quiet?: boolean;
}) {
  return (
    <form action={action}>
      <input type="hidden" name="id" value={id} />
      <button type="submit" className={quiet ? 'button cancel-link' : 'button'} title={title}>
        {children}
      </button>
    </form>
  );
}
