'use server';

// The rules pages' writes: the same functions as the API (lib/features/rules), answered as form state.
import { revalidatePath } from 'next/cache';
import { redirect } from 'next/navigation';
import { z } from 'zod';
import { getDb } from '@/db/client';
import { currentActor } from '@/lib/features/auth/actor';
import { malformed, orAnswer } from '@/lib/features/auth/session';
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

async function runNow(who: Awaited<ReturnType<typeof currentActor>>, id: number) {
  const { runId } = await requestRun(getDb(), who, id);
  const queue = webRuleQueue();
  // Redis away: the run waits in Postgres; a worker hears of it anyway (NOTIFY) or finds it on its tick.
  if (queue)
    await enqueueRun(queue, runId).catch((err: unknown) => logLine('rule.run.enqueue.deferred', { runId, error: (err as Error).message }));
}

export async function runRuleAction(form: FormData): Promise<void> {
  const who = await currentActor();
  const parsed = oneRule.safeParse(Object.fromEntries(form.entries()));
  if (!parsed.success) malformed();
  await runNow(who, parsed.data.id).catch((err: unknown) => {
    if (err instanceof RuleError) malformed();
    throw err;
  });
  revalidatePath(`/rules/${String(parsed.data.id)}`);
}

export async function deleteRuleAction(form: FormData): Promise<void> {
  const who = await currentActor();
  const parsed = oneRule.safeParse(Object.fromEntries(form.entries()));
  if (!parsed.success) malformed();
  await deleteRule(getDb(), who, parsed.data.id).catch((err: unknown) => {
    if (err instanceof RuleError) malformed();
    throw err;
  });
  revalidatePath('/rules');
  redirect('/rules');
}

const bulk = z.object({ verb: z.enum(['enable', 'disable', 'run']), ids: z.array(idText()).min(1).max(1000) });

/** Enable, disable or run now the rules ticked (each as its own change: one refused leaves the others done). */
export async function bulkRulesAction(form: FormData): Promise<void> {
  const who = await currentActor();
  const parsed = bulk.safeParse({ verb: form.get('verb'), ids: form.getAll('ids') });
  if (!parsed.success) malformed();
  const db = getDb();
  for (const id of parsed.data.ids) {
    try {
      if (parsed.data.verb === 'run') await runNow(who, id);
      else await setRuleEnabled(db, who, id, parsed.data.verb === 'enable');
    } catch (err) {
      if (!(err instanceof SubmitError) && (err as Error).name !== 'AccessDenied') throw err;
      logLine('rule.bulk.refused', { rule: id, verb: parsed.data.verb, error: (err as Error).message });
    }
  }
  revalidatePath('/rules');
}

/** A form's "Applies to": every one, an environment ("env:ID") or a herd ("herd:ID"). */
const scopeOfForm = (scope: string) => ({
  ...(scope.startsWith('env:') ? { environmentId: Number(scope.slice(4)) } : {}),
  ...(scope.startsWith('herd:') ? { herdId: Number(scope.slice(5)) } : {}),
});

/** A blackout or a window from its page's form: its errors by field, a refusal said, or its name once saved. */
async function saveScoped<B>(
  parsed: { success: true; data: B } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } },
  create: (who: Awaited<ReturnType<typeof currentActor>>, body: B) => Promise<{ name: string }>,
  page: string,
): Promise<BlackoutFormState> {
  const who = await currentActor();
  if (!parsed.success) {
    const errors: Record<string, string> = {};
    for (const i of parsed.error.issues) errors[String(i.path.at(-1) ?? 'form')] ??= i.message;
    return { errors };
  }
  try {
    const made = await orAnswer<{ name: string } | { denied: string }>(
      () => create(who, parsed.data),
      (err) => ({ denied: err.message }),
    );
    if ('denied' in made) return { errors: { form: made.denied } };
    revalidatePath(page);
    return { saved: made.name };
  } catch (err) {
    return formError(err);
  }
}

export async function createBlackoutAction(_prev: BlackoutFormState, form: FormData): Promise<BlackoutFormState> {
  const f = Object.fromEntries(form.entries()) as Record<string, string>;
  const parsed = blackoutBody.safeParse({
    name: f.name ?? '',
    reason: f.reason ?? '',
    dates: { from: f.from ?? '', to: f.to || f.from || '' },
    timezone: f.timezone || 'UTC',
    ...scopeOfForm(f.scope ?? ''),
  });
  return saveScoped(parsed, (who, body) => createBlackout(getDb(), who, body), '/rules/blackouts');
}

export async function createWindowAction(_prev: WindowFormState, form: FormData): Promise<WindowFormState> {
  const f = Object.fromEntries(form.entries()) as Record<string, string>;
  const number = (v: string | undefined) => (v !== undefined && /^\s*\d+\s*$/.test(v) ? Number(v) : v);
  const parsed = windowBody.safeParse({
    name: f.name ?? '',
    days: form.getAll('days').map((d) => number(typeof d === 'string' ? d : '')),
    starts: (f.starts ?? '').trim(),
    durationMinutes: number(f.durationMinutes),
    timezone: f.timezone || 'UTC',
    ...scopeOfForm(f.scope ?? ''),
  });
  return saveScoped(parsed, (who, body) => createWindow(getDb(), who, body), '/rules/windows');
}

/** A delete from a list's row: the id checked, the refusal recorded (orAnswer), a missing one a bad request. */
async function deleteFromRow(
  form: FormData,
  remove: (who: Awaited<ReturnType<typeof currentActor>>, id: number) => Promise<void>,
  page: string,
) {
  const who = await currentActor();
  const parsed = oneRule.safeParse(Object.fromEntries(form.entries()));
  if (!parsed.success) malformed();
  await orAnswer(
    () => remove(who, parsed.data.id),
    () => undefined,
  ).catch((err: unknown) => {
    if (err instanceof RuleError) malformed();
    throw err;
  });
  revalidatePath(page);
}

export async function deleteBlackoutAction(form: FormData): Promise<void> {
  await deleteFromRow(form, (who, id) => deleteBlackout(getDb(), who, id), '/rules/blackouts');
}

export async function deleteWindowAction(form: FormData): Promise<void> {
  await deleteFromRow(form, (who, id) => deleteWindow(getDb(), who, id), '/rules/windows');
}

/** A webhook from the webhooks page: the API's body, its secret in the answer this once. */
export async function createWebhookAction(_prev: WebhookFormState, form: FormData): Promise<WebhookFormState> {
  const who = await currentActor();
  const ruleId = form.get('ruleId');
  const parsed = webhookBody.safeParse({
    name: form.get('name') ?? '',
    url: form.get('url') ?? '',
    ...(typeof ruleId === 'string' && ruleId !== '' ? { ruleId: /^\d+$/.test(ruleId) ? Number(ruleId) : ruleId } : {}),
    ...(form.getAll('events').length ? { events: form.getAll('events') } : {}),
  });
  if (!parsed.success) {
    const errors: Record<string, string> = {};
    for (const i of parsed.error.issues) errors[String(i.path[0] ?? 'form')] ??= i.message;
    return { errors };
  }
  try {
    const made = await orAnswer<{ name: string; secret: string } | { denied: string }>(
      () => createWebhook(getDb(), who, parsed.data),
      (err) => ({ denied: err.message }),
    );
    if ('denied' in made) return { errors: { form: made.denied } };
    revalidatePath('/rules/webhooks');
    return { made: { name: made.name, secret: made.secret } };
  } catch (err) {
    return formError(err);
  }
}

export async function deleteWebhookAction(form: FormData): Promise<void> {
  await deleteFromRow(form, (who, id) => deleteWebhook(getDb(), who, id), '/rules/webhooks');
}

/** The rule's new owner keeps its webhook: delivered again. */
export async function keepWebhookAction(form: FormData): Promise<void> {
  await deleteFromRow(form, (who, id) => keepWebhook(getDb(), who, id), '/rules/webhooks');
}
