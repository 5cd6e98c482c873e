import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { RuleForm } from '@/components/rules/rule-form';
import { requireAccess } from '@/lib/features/auth/session';
import { isHerdAction } from '@/lib/engine/define-action';
import { actions } from '@/lib/actions/registry';
import { createRuleAction } from '../actions';

export const dynamic = 'force-dynamic';

export default async function NewRulePage() {
  await requireAccess();
  return (
    <>
      <Breadcrumbs items={[{ label: 'Rules', href: '/rules' }, { label: 'New rule' }]} />
      <h1>New rule</h1>
      <p>You will own it: each time it fires, your roles at that moment decide whether it runs.</p>
      <RuleForm
        create={createRuleAction}
        actions={actions.filter((a) => a.schedulable !== false).map((a) => ({ name: a.name, label: a.label, onHerds: isHerdAction(a) }))}
      />
    </>
  );
}
