import Link from 'next/link';
import { asc } from 'drizzle-orm';
import { getDb } from '@/db/client';
import { rules } from '@/db/schema';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { ResultTable } from '@/components/tables/result-table';
import { WebhookForm } from '@/components/rules/webhook-form';
import { currentActor } from '@/lib/features/auth/actor';
import { mayManage } from '@/lib/features/rules/rules';
import { manageableWebhooks, WEBHOOK_EVENTS } from '@/lib/features/rules/webhooks';
import { createWebhookAction, deleteWebhookAction, keepWebhookAction } from '../actions';
import { IdButton } from '@/components/tables/id-button';

export const dynamic = 'force-dynamic';

/** The webhooks you may manage (a global admin: all): where each goes, for what, and its deliveries. */
export default async function WebhooksPage() {
  const who = await currentActor();
  const db = getDb();
  const list = await manageableWebhooks(db, who);
  const allRules = await db.select({ id: rules.id, name: rules.name, ownerId: rules.ownerId }).from(rules).orderBy(asc(rules.name));
  const ruleName = new Map(allRules.map((r) => [r.id, r.name]));
  const ruleOwner = new Map(allRules.map((r) => [r.id, r.ownerId]));
  // A rule's webhook stops when the rule changes owner, until the new owner keeps it.
  const held = (w: { ruleId: number | null; keeperId: number | null }) =>
    w.ruleId !== null && (w.keeperId === null || w.keeperId !== ruleOwner.get(w.ruleId));
  const global = who.access.superuser || who.access.global === 'admin';
  return (
    <>
      <Breadcrumbs items={[{ label: 'Rules', href: '/rules' }, { label: 'Webhooks' }]} />
      <h1>Webhooks</h1>
      <p>
        Each delivery is a signed JSON POST (docs/rules.md, “Webhooks”), tried again with backoff; private addresses are refused unless the
        operator allows them.
      </p>
      <ResultTable
        testId="webhooks"
        rows={list}
        rowKey={(w) => w.id}
        rowData={(w) => ({ webhook: w.name })}
        empty="No webhook yet."
        columns={[
          { header: 'Name', cell: (w) => <Link href={`/rules/webhooks/${String(w.id)}`}>{w.name}</Link> },
          { header: 'URL', cell: (w) => w.url },
          {
            header: 'For',
            cell: (w) => (w.ruleId === null ? 'every rule (global)' : `rule ${ruleName.get(w.ruleId) ?? `#${String(w.ruleId)}`}`),
          },
          { header: 'Events', cell: (w) => w.events.join(', ') },
          { header: 'Format', cell: (w) => w.format },
          { header: 'Made by', cell: (w) => w.createdBy },
          {
            header: '',
            cell: (w) => (
              <>
                {held(w) && (
                  <form action={keepWebhookAction}>
                    <span>held: its rule changed owner</span> <input type="hidden" name="id" value={w.id} />
                    {ruleOwner.get(w.ruleId ?? -1) === who.id && (
                      <button type="submit" className="button">
                        Keep
                      </button>
                    )}
                  </form>
                )}
                <IdButton action={deleteWebhookAction} id={w.id} quiet>
                  Delete
                </IdButton>
              </>
            ),
          },
        ]}
      />
      <h2>New webhook</h2>
      <WebhookForm
        create={createWebhookAction}
        rules={allRules.filter((r) => mayManage(who, r)).map((r) => ({ id: r.id, name: r.name }))}
        events={WEBHOOK_EVENTS}
        global={global}
      />
    </>
  );
}
