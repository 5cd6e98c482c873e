import { z } from 'zod';
import { defineForm, f } from '../form-fields';

const ROLES = ['viewer', 'operator', 'admin'] as const;
const SUBJECTS = ['group', 'user'] as const;

export const roleBindingForm = defineForm({
  schema: z.object({
    role: f.choice(ROLES),
    subjectType: f.choice(SUBJECTS),
    subject: f.name(500),
    environmentId: f.optionalRelation(),
  }).superRefine((v, ctx) => {
    // A group is named by its DN, as the directory returns it for the user's groups.
    if (v.subjectType === 'group' && !/^[^=,]+=[^,]+(,[^=,]+=[^,]+)*$/.test(v.subject.replace(/\\,/g, ''))) {
      ctx.addIssue({ code: 'custom', path: ['subject'], message: 'Name a group by its DN, for example cn=dba-prod,ou=groups,dc=example,dc=com.' });
    }
    if (v.subjectType === 'user' && /[\s,=]/.test(v.subject)) {
      ctx.addIssue({ code: 'custom', path: ['subject'], message: 'Name a user by the username they sign in with (no spaces, commas or =).' });
    }
  }),
  fields: [
    { name: 'role', label: 'Role', help: 'viewer: look at everything in scope. operator: start, stop, restart, reload, rebuild, re-point; add and change inventory. admin: promote, switchover, DR failover, deletes, role bindings.', input: { type: 'select', choices: ROLES } },
    { name: 'subjectType', label: 'Bound to', help: 'A directory group (every member) or one user.', input: { type: 'select', choices: SUBJECTS } },
    { name: 'subject', label: 'Group DN or username', help: 'Compared without regard to case.', input: { type: 'text' } },
    { name: 'environmentId', label: 'Environment', help: 'Leave empty for every environment.', input: { type: 'relation', model: 'environments', optional: true } },
  ],
});
