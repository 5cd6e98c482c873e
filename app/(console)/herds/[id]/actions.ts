'use server';

// An admin accepts what a member's agent reports of Patroni (its REST address, the herd's driver).
import { revalidatePath } from 'next/cache';
import { z } from 'zod';
import { getDb } from '@/db/client';
import { acceptPatroniProposal } from '@/lib/features/agents/patroni-proposal';
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
