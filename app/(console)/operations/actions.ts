'use server';

// Thin server actions over lib/engine and lib/features/operations: confirm (enqueue), pause, resume, abort (cancel), retry.
import { redirect } from 'next/navigation';
import { z } from 'zod';
import { idText, MAX_BIG_ID, MAX_ID } from '@/lib/adapters/validation/ids';
import { idList } from '@/lib/adapters/validation/selection';
import { getDb } from '@/db/client';
import { OperationStateError } from '@/lib/engine/hold';
import { cancelOperation, pauseOperation, resumeOperation, retryInput } from '@/lib/features/operations/operation-control';
import { getAction } from '@/lib/actions/registry';
import { isHerdAction } from '@/lib/engine/define-action';
import { submitOperation } from '@/lib/engine/submit';
import { SubmitError, type SubmitErrorCode } from '@/lib/engine/submit-errors';
import { webQueue } from '@/lib/entry/web/web-queue';
import { paramsFromForm, paramsQuery } from '@/lib/engine/params-form';
import { wavesFromForm, wavesToForm } from '@/lib/engine/waves-form';
import { currentActor } from '@/lib/features/auth/actor';
import { malformed, orDeny } from '@/lib/features/auth/session';
import { formAction } from '@/lib/features/auth/server-action';
import { AccessDenied, auditDenial, type SignedInActor } from '@/lib/engine/access';
import { decideOperation } from '@/lib/features/operations/approvals';
import { auditLinkRefusal, checkLink } from '@/lib/features/operations/approval-links';

const confirmForm = z.object({
  action: z.string().min(1).max(50),
  // The ids the confirmation page listed (it computed "all matching" itself), in the shared selection's
  // bounds once the action says whose ids they are.
  ids: z.string(),
  digest: z.string().regex(/^[0-9a-f]{32}$/),
  key: z.string().regex(/^[0-9a-f]{32}$/),
  confirmation: z
    .string()
    .max(200)
    .refine((c) => !c.includes('\u0000'))
    .default(''),
  /** Break glass (an admin, a plan that needs approval): ticked, and the reason. */
  breakGlassNow: z.literal('1').optional(),
  breakGlassReason: z.string().max(500).optional(),
  /** The operation this one retries (recorded in its audit entry). */
  retryOf: idText('retryOf', MAX_BIG_ID).optional(),
  /** The changelist the selection came from (the way back after a stale plan). */
  from: z
    .string()
    .regex(/^[a-z-]{1,40}$/)
    .optional(),
});

/** Back to the plan page, which says why from this flag (parameters that do not fit: it says what is wrong with them). */
const backFlag: Record<SubmitErrorCode, string> = {
  stale: '&stale=1',
  mistyped: '&mistyped=1',
  nothing: '&nothing=1',
  params: '',
  'wrong-targets': '',
  waves: '',
  state: '',
  rule: '',
  'not-found': '',
  'break-glass': '&breakglass=refused',
};

export async function confirmOperationAction(form: FormData): Promise<void> {
  const who = await currentActor();
  const entries = Object.fromEntries(form.entries());
  const params = paramsFromForm(entries);
  const parsed = confirmForm.safeParse(entries);
  if (!parsed.success) malformed();
  const { action: name, digest, key, confirmation, from, retryOf, breakGlassNow, breakGlassReason } = parsed.data;
  const action = getAction(name);
  if (!action) malformed();
  const picked = idList(isHerdAction(action) ? MAX_ID : MAX_BIG_ID).safeParse(parsed.data.ids);
  if (!picked.success) malformed();
  const ids = picked.data;
  const waves = wavesFromForm(entries);
  // The page only offers a confirm for waves it could show: others were not made by it.
  if (!waves.ok) malformed();
  const wavesQuery = Object.entries(wavesToForm(waves.spec))
    .map(([k, v]) => `&${k}=${encodeURIComponent(v)}`)
    .join('');
  const back = `/operations/new?action=${encodeURIComponent(name)}&ids=${ids.join(',')}${paramsQuery(params)}${wavesQuery}${from ? `&from=${from}` : ''}${retryOf ? `&retryOf=${retryOf}` : ''}`;
  let id: number;
  try {
    id = (
      await orDeny(() =>
        submitOperation(
          getDb(),
          webQueue(),
          action,
          {
            [isHerdAction(action) ? 'herdIds' : 'instanceIds']: ids,
            params,
            digest,
            confirmation,
            idempotencyKey: key,
            retryOf,
            waves: waves.spec,
            ...(breakGlassNow ? { breakGlass: breakGlassReason ?? '' } : {}),
          },
          who,
        ),
      )
    ).id;
  } catch (err) {
    if (err instanceof SubmitError) redirect(`${back}${backFlag[err.code]}`);
    throw err;
  }
  redirect(`/operations/${id}`);
}

const idForm = z.object({ id: idText('id', MAX_BIG_ID) });

export const cancelOperationAction = formAction(idForm, async (who, { id }) => {
  try {
    await orDeny(() => cancelOperation(getDb(), id, who));
  } catch (err) {
    // Finished (or already aborting) meanwhile: the page shows how it ended.
    if (!(err instanceof OperationStateError)) throw err;
  }
  redirect(`/operations/${id}`);
});

/** Pause or resume from the operation page; one that already finished (or was already paused) just shows the page again. */
const pauseOrResume = (act: (id: number, who: SignedInActor) => Promise<void>) =>
  formAction(idForm, async (who, { id }) => {
    try {
      await orDeny(() => act(id, who));
    } catch (err) {
      if (!(err instanceof OperationStateError)) throw err;
    }
    redirect(`/operations/${id}`);
  });

export const pauseOperationAction = pauseOrResume((id, who) => pauseOperation(getDb(), id, who));

export const resumeOperationAction = pauseOrResume((id, who) => resumeOperation(getDb(), webQueue(), id, who));

const decisionForm = z.object({
  id: idText('id', MAX_BIG_ID),
  decision: z.enum(['approved', 'denied']),
  comment: z
    .string()
    .max(500)
    .refine((c) => !c.includes('\u0000'))
    .default(''),
  /** The chat link the page was opened with: spent by this decision. */
  link: z.string().max(600).optional(),
});

/**
 * Approve or deny from the operation page. Refused (the plan went stale, it no longer waits, the person
 * may not decide): the page again, saying which by a code, never by text carried in the URL.
 */
export const decideOperationAction = formAction(decisionForm, async (who, { id, decision, comment, link }) => {
  let refused = '';
  try {
    const check = link ? await checkLink(getDb(), link, id) : null;
    if (check && (!check.ok || check.claims.a !== decision)) {
      await auditLinkRefusal(getDb(), who, check.ok ? { ok: false, why: 'the link offers the other decision', operationId: id } : check);
      redirect(`/operations/${id}?refused=link`);
    }
    await decideOperation(getDb(), webQueue(), id, who, {
      decision,
      comment,
      via: check?.ok ? 'link' : 'console',
      ...(check?.ok ? { link: check.claims } : {}),
    });
  } catch (err) {
    if (err instanceof AccessDenied) {
      await auditDenial(getDb(), err, who);
      refused = 'denied';
    } else if (err instanceof SubmitError) refused = err.code === 'stale' ? 'stale' : 'state';
    else throw err;
  }
  redirect(`/operations/${id}${refused ? `?refused=${refused}` : ''}`);
});

/** A retry is a new confirmation: to the confirmation page, with the targets to run again. */
export const retryOperationAction = formAction(idForm, async (who, { id }) => {
  const input = await orDeny(() => retryInput(getDb(), who.access, id));
  if (!input || !input.ids.length) redirect(`/operations/${id}`);
  redirect(
    `/operations/new?action=${encodeURIComponent(input.action)}&ids=${input.ids.join(',')}${paramsQuery(input.params)}&retryOf=${id}`,
  );
});
