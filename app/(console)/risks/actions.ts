'use server';

// An operator acknowledges a risk (it stops counting until it expires or gets worse by its step), or takes
// an acknowledgement back; both audited (lib/features/risks/acknowledge.ts).
import { revalidatePath } from 'next/cache';
import { z } from 'zod';
import { getDb } from '@/db/client';
import { malformed, orDeny } from '@/lib/features/auth/session';
import { formAction } from '@/lib/features/auth/server-action';
import { idText, MAX_BIG_ID } from '@/lib/adapters/validation/ids';
import { ackBody, acknowledgeRisk, RiskError, unacknowledgeRisk } from '@/lib/features/risks/acknowledge';

const ackForm = z.object({
  id: idText('id', MAX_BIG_ID),
  reason: z.string(),
  hours: z.coerce.number(),
  step: z
    .string()
    .optional()
    .transform((s) => (s?.trim() ? Number(s) : null)),
});

/** Cleared meanwhile: the page shows what is now. */
const unlessCleared = async (fn: () => Promise<void>) => {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof RiskError) || err.status === 400) throw err;
  }
};

export const acknowledgeRiskAction = formAction(ackForm, async (who, input) => {
  // The form's own constraints say what is wrong before it is sent; a form made by hand is not found.
  const parsed = ackBody.safeParse({ reason: input.reason, hours: input.hours, step: input.step });
  if (!parsed.success) malformed();
  const body = parsed.data;
  await orDeny(() => unlessCleared(() => acknowledgeRisk(getDb(), who, input.id, body)));
  revalidatePath('/risks');
});

export const unacknowledgeRiskAction = formAction(z.object({ id: idText('id', MAX_BIG_ID) }), async (who, input) => {
  await orDeny(() => unlessCleared(() => unacknowledgeRisk(getDb(), who, input.id)));
  revalidatePath('/risks');
});
