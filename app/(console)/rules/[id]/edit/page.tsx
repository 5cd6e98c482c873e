import { notFound, redirect } from 'next/navigation';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { RuleForm } from '@/components/rules/rule-form';
import { currentActor } from '@/lib/features/auth/actor';
import { isHerdAction } from '@/lib/engine/define-action';
import { actions } from '@/lib/actions/registry';
import { parseId } from '@/lib/adapters/validation/ids';
import { ruleBody } from '@/lib/features/rules/rule-body';
import { bodyToForm } from '@/lib/features/rules/rule-form';
import { bodyOf, getRule, mayManage, mayRead } from '@/lib/features/rules/rules';
import { updateRuleAction } from '../../actions';

export const dynamic = 'force-dynamic';

/** A rule's form, filled with what it is; saving it makes you its owner (your roles decide its fires). */
export default async function EditRulePage({ params }: { params: Promise<{ id: string }> }) {
  const who = await currentActor();
  const id = parseId((await params).id);
  if (id === null) notFound();
  const rule = await getRule(getDb(), id).catch(() => null);
  // One the user may not read is not there; one they may read but not change has no form.
  if (!rule || !mayRead(who.access, rule) || !mayManage(who, rule)) notFound();
  // A reverse is edited with its rule.
  if (rule.reverseOf !== null) redirect(`/rules/${String(rule.reverseOf)}/edit`);
  const stored = ruleBody.safeParse(bodyOf(rule));
  return (
    <>
      <Breadcrumbs
        items={[{ label: 'Rules', href: '/rules' }, { label: rule.name, href: `/rules/${String(rule.id)}` }, { label: 'Edit' }]}
      />
      <h1>Edit {rule.name}</h1>
      <p>
        Saving it makes you its owner ({rule.ownerName} is now): each time it fires, your roles at that moment decide whether it runs. Its
        parameters and waves are kept as they are.
      </p>
      {!stored.success && (
        <p className="errornote" role="alert">
          Its stored form does not read any more ({stored.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}): fix it
          below.
        </p>
      )}
      <RuleForm
        create={updateRuleAction.bind(null, rule.id)}
        actions={actions.map((a) => ({ name: a.name, label: a.label, onHerds: isHerdAction(a) }))}
        initial={stored.success ? bodyToForm(stored.data) : { name: rule.name, description: rule.description, action: rule.action }}
      />
    </>
  );
}
