'use server';

// Thin server actions over lib/features/admin/mutations: the one door for console writes.
import { redirect } from 'next/navigation';
import { z } from 'zod';
import { idText } from '@/lib/adapters/validation/ids';
import { idList } from '@/lib/adapters/validation/selection';
import { getDb } from '@/db/client';
import { deleteObjects, environmentOf, saveObject } from '@/lib/features/admin/mutations';
import { labelsFor } from '@/lib/features/admin/list-query';
import { createAgentToken } from '@/lib/features/agents/ingest';
import { HostBindingError } from '@/lib/fleet/host-binding';
import { demand } from '@/lib/engine/access';
import { maxIdOf } from '@/lib/features/admin/define-admin';
import { getEditable } from '@/lib/features/admin/registry';
import { serversAdmin } from '@/lib/features/admin/models/servers.admin';
import type { SaveOutcome } from '@/lib/features/admin/save-outcome';
import { currentActor } from '@/lib/features/auth/actor';
import { formAction } from '@/lib/features/auth/server-action';
import { malformed, orAnswer, orDeny } from '@/lib/features/auth/session';
import type { Intent } from '@/components/admin/object-form';
import type { AgentTokenState } from '@/components/admin/agent-token-form';
import type { DiscoveryState } from '@/components/admin/discovery-panel';
import { requestDiscovery } from '@/lib/features/discovery/discovery-runs';
import { discoveryUnavailable } from '@/lib/features/discovery/status';

const intents = z.enum(['save', 'addanother', 'continue']);

// A server action's arguments are whatever the client sent: `values` is checked here and parsed by saveObject.
export async function saveAction(model: string, id: number | null, values: unknown, intent: Intent): Promise<SaveOutcome> {
  const who = await currentActor();
  const def = getEditable(model);
  if (!def) return { ok: false, fieldErrors: {}, formError: `Unknown model ${model}.` };
  const okId = id === null || (Number.isInteger(id) && id > 0 && id <= maxIdOf(def.id));
  const okIntent = intents.safeParse(intent);
  if (!okId || !okIntent.success || typeof values !== 'object' || values === null || Array.isArray(values)) {
    return { ok: false, fieldErrors: {}, formError: 'Malformed request.' };
  }
  const res = await orAnswer(
    () => saveObject(getDb(), def, id, values, who),
    (err) => ({ ok: false as const, fieldErrors: {}, formError: `Permission denied: ${err.message}. Nothing has been changed.` }),
  );
  if (!res.ok) return res;
  const base = `/admin/${def.name}`;
  const redirectTo =
    okIntent.data === 'continue'
      ? `${base}/${res.id}?saved=1`
      : okIntent.data === 'addanother'
        ? `${base}/add?saved=${res.id}`
        : `${base}?saved=${res.id}`;
  return { ok: true, redirect: redirectTo };
}

// The delete page posts the ids it listed (never "all": it computed them), in the shared selection's bounds.
const deleteForm = z.object({ model: z.string().min(1).max(50), ids: z.string() });

export const deleteAction = formAction(
  deleteForm,
  async (who, input) => {
    const def = getEditable(input.model);
    if (!def) malformed();
    const ids = idList(maxIdOf(def.id)).safeParse(input.ids);
    if (!ids.success) malformed();
    const res = await orDeny(() => deleteObjects(getDb(), def, ids.data, who));
    redirect(`/admin/${def.name}?deleted=${res.deleted}`);
  },
  (form) => ({ model: form.get('model'), ids: form.get('ids') }),
);

const agentTokenForm = z.object({ serverId: idText() });

/** Creates or rotates a server's agent token (admins of the server's environment); shown once. */
export async function agentTokenAction(_prev: AgentTokenState, form: FormData): Promise<AgentTokenState> {
  const who = await currentActor();
  const parsed = agentTokenForm.safeParse(Object.fromEntries(form.entries()));
  if (!parsed.success) return { error: 'Malformed request.' };
  const db = getDb();
  const { serverId } = parsed.data;
  // A server that is not there has no environment to judge the role in, and no token to rotate.
  if (!(await labelsFor(db, serversAdmin, [serverId])).length) return { error: `There is no server with id ${serverId}.` };
  return orAnswer<AgentTokenState>(
    async () => {
      await demand(db, who.access, 'admin', 'An agent token for this server', [await environmentOf(db, serversAdmin, serverId)]);
      try {
        return { token: await createAgentToken(db, serverId, who) };
      } catch (err) {
        if (err instanceof HostBindingError) return { error: err.message };
        throw err;
      }
    },
    (err) => ({ error: `Permission denied: ${err.message}.` }),
  );
}

/** Asks the workers for an EC2 discovery pass now (global admins: a pass creates servers in any environment). */
export async function discoveryAction(_prev: DiscoveryState): Promise<DiscoveryState> {
  const who = await currentActor();
  const db = getDb();
  return orAnswer<DiscoveryState>(
    async () => {
      await demand(db, who.access, 'admin', 'Asking for an EC2 discovery pass', [null]);
      const reason = await discoveryUnavailable();
      if (reason) return { error: reason };
      const { run, created } = await requestDiscovery(db, who.username);
      return {
        runId: run.id,
        message: created ? `Discovery pass #${run.id} asked for.` : `Discovery pass #${run.id} was already waiting.`,
      };
    },
    (err) => ({ error: `Permission denied: ${err.message}.` }),
  );
}
