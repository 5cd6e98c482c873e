'use server';

// An admin accepts what a member's agent reports of Patroni (its REST address, the herd's driver).
import { revalidatePath } from 'next/cache';
import { z } from 'zod';
import { getDb } from '@/db/client';
import { acceptPatroniProposal } from '@/lib/features/agents/patroni-proposal';
import { AcceptError, acceptDrift } from '@/lib/features/settings/accept';
import { currentActor } from '@/lib/features/auth/actor';
import { malformed, orDeny } from '@/lib/features/auth/session';
import { idText, MAX_BIG_ID } from '@/lib/adapters/validation/ids';

const acceptForm = z.object({ herdId: idText(), instanceId: idText('instanceId', MAX_BIG_ID), url: z.string().max(300) });

export async function acceptPatroniProposalAction(form: FormData): Promise<void> {
  const who = await currentActor();
  const parsed = acceptForm.safeParse(Object.fromEntries(form.entries()));
  if (!parsed.success) malformed();
  await orDeny(() => acceptPatroniProposal(getDb(), who, parsed.data.instanceId, parsed.data.url));
  revalidatePath(`/herds/${String(parsed.data.herdId)}`);
}

const acceptDriftForm = z.object({
  herdId: idText(),
  instanceId: idText('instanceId', MAX_BIG_ID),
  name: z.string().max(100),
  into: z.enum(['source', 'herd']),
});

/** An admin keeps what a member runs: into the setting's group, or into the herd's overrides. */
export async function acceptDriftAction(form: FormData): Promise<void> {
  const who = await currentActor();
  const parsed = acceptDriftForm.safeParse(Object.fromEntries(form.entries()));
  if (!parsed.success) malformed();
  await orDeny(async () => {
    try {
      await acceptDrift(getDb(), who, parsed.data.instanceId, [parsed.data.name], parsed.data.into);
    } catch (err) {
      // Accepted meanwhile (a second click), or no longer drifted: the page shows what is now.
      if (!(err instanceof AcceptError)) throw err;
    }
  });
  revalidatePath(`/herds/${String(parsed.data.herdId)}`);
}
