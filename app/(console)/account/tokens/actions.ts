'use server';

// The signed-in user's own API tokens: create (the token is returned once, to be shown once) and revoke.
import { revalidatePath } from 'next/cache';
import { z } from 'zod';
import { idText } from '@/lib/adapters/validation/ids';
import { getDb } from '@/db/client';
import { createApiToken, newTokenForm, revokeApiToken } from '@/lib/features/auth/api-tokens';
import { formAction, stateAction } from '@/lib/features/auth/server-action';
import type { NewTokenState } from '@/components/auth/new-token-form';

export const createTokenAction = stateAction(newTokenForm, async (who, { name, scope, expiresInDays }): Promise<NewTokenState> => {
  const expiresAt = expiresInDays ? new Date(Date.now() + expiresInDays * 86_400_000) : null;
  const { token } = await createApiToken(getDb(), who.id, name, scope, expiresAt, who);
  revalidatePath('/account/tokens');
  return { token, name };
});

const revokeForm = z.object({ id: idText() });

export const revokeTokenAction = formAction(revokeForm, async (who, { id }) => {
  // Only the user's own tokens: someone else's id changes nothing.
  await revokeApiToken(getDb(), id, who.id, who);
  revalidatePath('/account/tokens');
});
