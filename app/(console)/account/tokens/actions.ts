'use server';

// The signed-in user's own API tokens: create (the token is returned once, to be shown once) and revoke.
import { revalidatePath } from 'next/cache';
import { z } from 'zod';
import { idText } from '@/lib/adapters/validation/ids';
import { getDb } from '@/db/client';
import { createApiToken, newTokenForm, revokeApiToken } from '@/lib/features/auth/api-tokens';
import { currentActor } from '@/lib/features/auth/actor';
import { malformed } from '@/lib/features/auth/session';
import type { NewTokenState } from '@/components/auth/new-token-form';

export async function createTokenAction(_prev: NewTokenState, form: FormData): Promise<NewTokenState> {
  const who = await currentActor();
  const parsed = newTokenForm.safeParse(Object.fromEntries(form.entries()));
  if (!parsed.success) {
    const errors: Record<string, string> = {};
    for (const i of parsed.error.issues) errors[String(i.path[0] ?? 'form')] ??= i.message;
    return { errors };
  }
  const { name, scope, expiresInDays } = parsed.data;
  const expiresAt = expiresInDays ? new Date(Date.now() + expiresInDays * 86_400_000) : null;
  const { token } = await createApiToken(getDb(), who.id, name, scope, expiresAt, who);
  revalidatePath('/account/tokens');
  return { token, name };
}

const revokeForm = z.object({ id: idText() });

export async function revokeTokenAction(form: FormData): Promise<void> {
  const who = await currentActor();
  const parsed = revokeForm.safeParse(Object.fromEntries(form.entries()));
  if (!parsed.success) malformed();
  // Only the user's own tokens: someone else's id changes nothing.
  await revokeApiToken(getDb(), parsed.data.id, who.id, who);
  revalidatePath('/account/tokens');
}
