'use server';

// An admin accepts what a member's agent reports of Patroni (its REST address, the herd's driver).
import { revalidatePath } from 'next/cache';
import { z } from 'zod';
import { getDb } from '@/db/client';
import { acceptPatroniProposal } from '@/lib/features/agents/patroni-proposal';
import { AcceptError, acceptDrift } from '@/lib/features/settings/accept';
import { AcceptObjectsError, acceptObjects } from '@/lib/features/objects/accept';
import { orDeny } from '@/lib/features/auth/session';
import { formAction } from '@/lib/features/auth/server-action';
import { idText, MAX_BIG_ID } from '@/lib/adapters/validation/ids';

const acceptForm = z.object({ herdId: idText(), instanceId: idText('instanceId', MAX_BIG_ID), url: z.string().max(300) });

export const acceptPatroniProposalAction = formAction(acceptForm, async (who, input) => {
  await orDeny(() => acceptPatroniProposal(getDb(), who, input.instanceId, input.url));
  revalidatePath(`/herds/${String(input.herdId)}`);
});

const acceptDriftForm = z.object({
  herdId: idText(),
  instanceId: idText('instanceId', MAX_BIG_ID),
  name: z.string().max(100),
  into: z.enum(['source', 'herd']),
});

/** An admin keeps what a member runs: into the setting's group, or into the herd's overrides. */
export const acceptDriftAction = formAction(acceptDriftForm, async (who, input) => {
  await orDeny(async () => {
    try {
      await acceptDrift(getDb(), who, input.instanceId, [input.name], input.into);
    } catch (err) {
      // Accepted meanwhile (a second click), or no longer drifted: the page shows what is now.
      if (!(err instanceof AcceptError)) throw err;
    }
  });
  revalidatePath(`/herds/${String(input.herdId)}`);
});

const acceptObjectsForm = z.object({ herdId: idText(), name: z.string().max(200) });

/** An admin keeps what the herd's primary has for one object, as a line of the herd's own. */
export const acceptObjectsAction = formAction(acceptObjectsForm, async (who, input) => {
  await orDeny(async () => {
    try {
      await acceptObjects(getDb(), who, input.herdId, [input.name]);
    } catch (err) {
      // Accepted meanwhile (a second click), or no longer drift: the page shows what is now.
      if (!(err instanceof AcceptObjectsError)) throw err;
    }
  });
  revalidatePath(`/herds/${String(input.herdId)}`);
});
