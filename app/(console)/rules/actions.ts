'use server';

// The rules pages' writes: the same functions as the API (lib/features/rules), answered as form state.
import { revalidatePath } from 'next/cache';
import { redirect } from 'next/navigation';
import { z } from 'zod';
import { getDb } from '@/db/client';
import { currentActor } from '@/lib/features/auth/actor';
import { formAction, stateAction } from '@/lib/features/auth/server-action';
import type { SignedInActor } from '@/lib/engine/access';
import { malformed, orAnswer, orDeny } from '@/lib/features/auth/session';
import { approveRule } from '@/lib/features/rules/rule-approval';
import { webRuleQueue } from '@/lib/entry/web/web-queue';
import { logLine } from '@/lib/adapters/log/log';
import { idText } from '@/lib/adapters/validation/ids';
import { blackoutBody, createBlackout, deleteBlackout } from '@/lib/features/rules/blackouts';
import { checkForm } from '@/lib/features/rules/rule-form';
import { createRule, deleteRule, getRule, requestRun, RuleError, setRuleEnabled, updateRule } from '@/lib/features/rules/rules';
import { ruleBody } from '@/lib/features/rules/rule-body';
import { enqueueRun } from '@/lib/features/rules/rule-queue';
import { SubmitError } from '@/lib/engine/submit-errors';
import type { RuleFormState } from '@/components/rules/rule-form';
import type { BlackoutFormState } from '@/components/rules/blackout-form';
import type { WindowFormState } from '@/components/rules/window-form';
import { createWindow, deleteWindow, windowBody } from '@/lib/features/rules/maintenance-windows';
import type { WebhookFormState } from '@/components/rules/webhook-form';
import { createWebhook, deleteWebhook, keepWebhook, webhookBody } from '@/lib/features/rules/webhooks';

/** A refusal from below (a rule error, a plan's parameters, a role missing) as the form's message. */
function formError(err: unknown): RuleFormState {
  if (err instanceof RuleError && Array.isArray(err.details)) {
    const errors: Record<string, string> = {};
    for (const d of err.details as { path: string; message: string }[])
      errors[d.path.split('.')[0] === 'instanceIds' || d.path.split('.')[0] === 'herdIds' ? 'ids' : d.path.split('.')[0] || 'form'] ??=
        d.message;
    return { errors };
  }
  if (err instanceof SubmitError) return { errors: { form: err.message } };
  throw err;
}

export async function createRuleAction(_prev: RuleFormState, form: FormData): Promise<RuleFormState> {
  const who = await currentActor();
  const checked = checkForm(Object.fromEntries(form.entries()));
  if (!checked.ok) return { errors: checked.errors };
  let id: number;
  try {
    const made = await orAnswer<{ id: number } | { denied: string }>(
      () => createRule(getDb(), who, checked.body),
      (err) => ({ denied: err.message }),
    );
    if ('denied' in made) return { errors: { form: made.denied } };
    id = made.id;
  } catch (err) {
    return formError(err);
  }
  revalidatePath('/rules');
  redirect(`/rules/${String(id)}`);
}

/** The edit page's save: the form's body, with what the form has no field for (params, waves) kept from the rule. */
export async function updateRuleAction(id: number, _prev: RuleFormState, form: FormData): Promise<RuleFormState> {
  const who = await currentActor();
  const checked = checkForm(Object.fromEntries(form.entries()));
  if (!checked.ok) return { errors: checked.errors };
  const db = getDb();
  try {
    const before = await getRule(db, id);
    const kept = ruleBody.safeParse({ ...checked.body, params: before.params, waves: before.waves });
    if (!kept.success) return { errors: { form: `its stored parameters or waves do not read: ${kept.error.issues[0]?.message ?? ''}` } };
    const body = kept.data;
    const saved = await orAnswer<{ id: number } | { denied: string }>(
      () => updateRule(db, who, id, body),
      (err) => ({ denied: err.message }),
    );
    if ('denied' in saved) return { errors: { form: saved.denied } };
  } catch (err) {
    return formError(err);
  }
  revalidatePath('/rules');
  redirect(`/rules/${String(id)}`);
}

const oneRule = z.object({ id: idText() });

async function runNow(who: SignedInActor, id: number) {
  const { runId } = await requestRun(getDb(), who, id);
  const queue = webRuleQueue();
  // Redis away: the run waits in Postgres; a worker hears of it anyway (NOTIFY) or finds it on its tick.
  if (queue)
    await enqueueRun(queue, runId).catch((err: unknown) => logLine('rule.run.enqueue.deferred', { runId, error: (err as Error).message }));
}

/** A rule that is not there (deleted meanwhile, or an id no page offers) is a bad request. */
const noRule = (err: unknown): never => {
  if (err instanceof RuleError) malformed();
  throw err;
};

export const runRuleAction = formAction(oneRule, async (who, { id }) => {
  await runNow(who, id).catch(noRule);
  revalidatePath(`/rules/${String(id)}`);
});

/** Approve the rule as saved (an approval policy covers it): refused to its owner and to who the policies do not name. */
export const approveRuleAction = formAction(oneRule, async (who, { id }) => {
  await orDeny(() => approveRule(getDb(), who, id)).catch((err: unknown) => {
    // Approved already, or saved meanwhile: the page says where it stands.
    if (!(err instanceof RuleError && err.status === 409)) noRule(err);
  });
  revalidatePath(`/rules/${String(id)}`);
});

export const deleteRuleAction = formAction(oneRule, async (who, { id }) => {
  await deleteRule(getDb(), who, id).catch(noRule);
  revalidatePath('/rules');
  redirect('/rules');
});

const bulk = z.object({ verb: z.enum(['enable', 'disable', 'run']), ids: z.array(idText()).min(1).max(1000) });

/** Enable, disable or run now the rules ticked (each as its own change: one refused leaves the others done). */
export const bulkRulesAction = formAction(
  bulk,
  async (who, { verb, ids }) => {
    const db = getDb();
    for (const id of ids) {
      try {
        if (verb === 'run') await runNow(who, id);
        else await setRuleEnabled(db, who, id, verb === 'enable');
      } catch (err) {
        if (!(err instanceof SubmitError) && (err as Error).name !== 'AccessDenied') throw err;
        logLine('rule.bulk.refused', { rule: id, verb, error: (err as Error).message });
      }
    }
    revalidatePath('/rules');
  },
  (form) => ({ verb: form.get('verb'), ids: form.getAll('ids') }),
);

/** A form's "Applies to": every one, an environment ("env:ID") or a herd ("herd:ID"). */
const scopeOfForm = (scope: string) => ({
  ...(scope.startsWith('env:') ? { environmentId: Number(scope.slice(4)) } : {}),
  ...(scope.startsWith('herd:') ? { herdId: Number(scope.slice(5)) } : {}),
});

/** A blackout or a window from its page's form: its errors by field, a refusal said, or its name once saved. */
function saveScoped<S extends z.ZodType>(
  schema: S,
  read: (form: FormData) => unknown,
  create: (who: SignedInActor, body: z.output<S>) => Promise<{ name: string }>,
  page: string,
): (prev: BlackoutFormState, form: FormData) => Promise<BlackoutFormState> {
  return stateAction(
    schema,
    async (who, body): Promise<BlackoutFormState> => {
      try {
        const made = await orAnswer<{ name: string } | { denied: string }>(
          () => create(who, body),
          (err) => ({ denied: err.message }),
        );
        if ('denied' in made) return { errors: { form: made.denied } };
        revalidatePath(page);
        return { saved: made.name };
      } catch (err) {
        return formError(err);
      }
    },
    { read, key: (path) => String(path.at(-1) ?? 'form') },
  );
}

export const createBlackoutAction = saveScoped(
  blackoutBody,
  (form) => {
    const f = Object.fromEntries(form.entries()) as Record<string, string>;
    return {
      name: f.name ?? '',
      reason: f.reason ?? '',
      dates: { from: f.from ?? '', to: f.to || f.from || '' },
      timezone: f.timezone || 'UTC',
      ...scopeOfForm(f.scope ?? ''),
    };
  },
  (who, body) => createBlackout(getDb(), who, body),
  '/rules/blackouts',
);

export const createWindowAction: (prev: WindowFormState, form: FormData) => Promise<WindowFormState> = saveScoped(
  windowBody,
  (form) => {
    const f = Object.fromEntries(form.entries()) as Record<string, string>;
    const number = (v: string | undefined) => (v !== undefined && /^\s*\d+\s*$/.test(v) ? Number(v) : v);
    return {
      name: f.name ?? '',
      days: form.getAll('days').map((d) => number(typeof d === 'string' ? d : '')),
      starts: (f.starts ?? '').trim(),
      durationMinutes: number(f.durationMinutes),
      timezone: f.timezone || 'UTC',
      ...scopeOfForm(f.scope ?? ''),
    };
  },
  (who, body) => createWindow(getDb(), who, body),
  '/rules/windows',
);

/** A delete from a list's row: the id checked, the refusal recorded (orAnswer), a missing one a bad request. */
const deleteFromRow = (remove: (who: SignedInActor, id: number) => Promise<void>, page: string) =>
  formAction(oneRule, async (who, { id }) => {
    await orAnswer(
      () => remove(who, id),
      () => undefined,
    ).catch(noRule);
    revalidatePath(page);
  });

export const deleteBlackoutAction = deleteFromRow((who, id) => deleteBlackout(getDb(), who, id), '/rules/blackouts');

export const deleteWindowAction = deleteFromRow((who, id) => deleteWindow(getDb(), who, id), '/rules/windows');

/** A webhook from the webhooks page: the API's body, its secret in the answer this once. */
export const createWebhookAction = stateAction(
  webhookBody,
  async (who, body): Promise<WebhookFormState> => {
    try {
      const made = await orAnswer<{ name: string; secret: string } | { denied: string }>(
        () => createWebhook(getDb(), who, body),
        (err) => ({ denied: err.message }),
      );
      if ('denied' in made) return { errors: { form: made.denied } };
      revalidatePath('/rules/webhooks');
      return { made: { name: made.name, secret: made.secret } };
    } catch (err) {
      return formError(err);
    }
  },
  {
    read: (form) => {
      const ruleId = form.get('ruleId');
      return {
        name: form.get('name') ?? '',
        url: form.get('url') ?? '',
        ...(typeof ruleId === 'string' && ruleId !== '' ? { ruleId: /^\d+$/.test(ruleId) ? Number(ruleId) : ruleId } : {}),
        ...(form.getAll('events').length ? { events: form.getAll('events') } : {}),
        ...(typeof form.get('format') === 'string' ? { format: form.get('format') } : {}),
      };
    },
  },
);

export const deleteWebhookAction = deleteFromRow((who, id) => deleteWebhook(getDb(), who, id), '/rules/webhooks');

/** The rule's new owner keeps its webhook: delivered again. */
export const keepWebhookAction = deleteFromRow((who, id) => keepWebhook(getDb(), who, id), '/rules/webhooks');
