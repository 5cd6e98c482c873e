'use server';

// Thin server actions over lib/admin/mutations: the one door for console writes.
import { redirect } from 'next/navigation';
import { z } from 'zod';
import { idText, MAX_ID, parseIdList } from '@/lib/validation/ids';
import { getDb } from '@/db/client';
import { deleteObjects, environmentOf, saveObject } from '@/lib/admin/mutations';
import { createAgentToken } from '@/lib/agent/ingest';
import { AccessDenied, auditDenial, demand } from '@/lib/auth/access';
import { getAdmin } from '@/lib/admin/registry';
import type { SaveOutcome } from '@/lib/admin/save-outcome';
import { currentActor } from '@/lib/auth/actor';
import { malformed, orDeny } from '@/lib/auth/session';
import type { Intent } from '@/components/admin/object-form';
import type { AgentTokenState } from '@/components/admin/agent-token-form';


const intents = z.enum(['save', 'addanother', 'continue']);

// A server action's arguments are whatever the client sent: `values` is checked here and parsed by saveObject.
export async function saveAction(model: string, id: number | null, values: unknown, intent: Intent): Promise<SaveOutcome> {
  const who = await currentActor();
  const def = getAdmin(model);
  if (!def || def.readOnly) return { ok: false, fieldErrors: {}, formError: `Unknown model ${model}.` };
  const okId = id === null || (Number.isInteger(id) && id > 0 && id <= MAX_ID);
  const okIntent = intents.safeParse(intent);
  if (!okId || !okIntent.success || typeof values !== 'object' || values === null) {
    return { ok: false, fieldErrors: {}, formError: 'Malformed request.' };
  }
  const res = await saveObject(getDb(), def, id, values, who);
  if (!res.ok) return res;
  const base = `/admin/${def.name}`;
  const redirectTo = okIntent.data === 'continue' ? `${base}/${res.id}?saved=1` : okIntent.data === 'addanother' ? `${base}/add?saved=${res.id}` : `${base}?saved=${res.id}`;
  return { ok: true, redirect: redirectTo };
}

const deleteForm = z.object({
  model: z.string().min(1).max(50),
  ids: z.string().refine((v) => parseIdList(v) !== null, 'ids must be a comma-separated list of ids (whole numbers from 1 to 2147483647)'),
});

export async function deleteAction(form: FormData): Promise<void> {
  const who = await currentActor();
  const parsed = deleteForm.safeParse({ model: form.get('model'), ids: form.get('ids') });
  if (!parsed.success) malformed();
  const def = getAdmin(parsed.data.model);
  if (!def || def.readOnly) malformed();
  const ids = [...new Set(parsed.data.ids.split(',').map(Number))];
  const res = await orDeny(() => deleteObjects(getDb(), def, ids, who));
  redirect(`/admin/${def.name}?deleted=${res.deleted}`);
}

const agentTokenForm = z.object({ serverId: idText() });

/** Creates or rotates a server's agent token (admins of the server's environment); shown once. */
export async function agentTokenAction(_prev: AgentTokenState, form: FormData): Promise<AgentTokenState> {
  const who = await currentActor();
  const parsed = agentTokenForm.safeParse(Object.fromEntries(form.entries()));
  if (!parsed.success) return { error: 'Malformed request.' };
  const def = getAdmin('servers');
  if (!def) throw new Error('the servers admin is not registered');
  const db = getDb();
  try {
    await demand(db, who.access, 'admin', 'An agent token for this server', [await environmentOf(db, def, parsed.data.serverId)]);
    return { token: await createAgentToken(db, parsed.data.serverId, who) };
  } catch (err) {
    if (err instanceof AccessDenied) {
      await auditDenial(db, err, who);
      return { error: `Permission denied: ${err.message}.` };
    }
    throw err;
  }
}
