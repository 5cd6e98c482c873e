// The confirmation page as data: the selection resolved (ticked ids, or "all matching" within what the
// user may run the action on), the plan, its waves and before/after pictures, and the form that
// confirms it. The page only draws what this returns; nothing here runs anything.
import type { Db } from '@/db/client';
import type { RawParams } from '@/lib/features/admin/list-params';
import { parseListParams, toQueryString } from '@/lib/features/admin/list-params';
import { matchingIds } from '@/lib/features/admin/list-query';
import { getAdmin } from '@/lib/features/admin/registry';
import { capitalize } from '@/lib/features/admin/text';
import { ParamsError, planOperation, type Plan, type PlannedTarget } from '@/lib/engine/plan';
import { loadInstanceRefs } from '@/lib/fleet/instance-ref';
import { paramsFromForm } from '@/lib/engine/params-form';
import { getAction } from '@/lib/actions/registry';
import { isHerdAction, type ActionParamField, type AnyAction } from '@/lib/engine/define-action';
import { canOnAll, environmentsWith, type Access } from '@/lib/engine/access';
import { approversText, requirementFor } from '@/lib/engine/approval-policies';
import { MAX_BIG_ID, MAX_ID, parseId } from '@/lib/adapters/validation/ids';
import { MAX_SELECTION, parseSelection } from '@/lib/adapters/validation/selection';
import { wavePlan, WavesError } from '@/lib/engine/waves';
import { wavesFromForm, wavesToForm } from '@/lib/engine/waves-form';
import { AwsNotConfiguredError } from '@/lib/adapters/aws/config';
import { costTotalText } from '@/lib/fleet/cloud/prices';
import type { DiagramInput } from '@/lib/fleet/herds/diagram';
import { herdAfter } from '@/lib/fleet/herds/diagram-after';
import { diagramOf, herdNow } from '@/lib/fleet/herds/topology';

/** How many targets' before-and-after pictures the page draws. */
export const DIAGRAMS_AT_MOST = 5;

export interface Crumb {
  label: string;
  href?: string;
}

/** A herd member a parameter can name. */
export interface MemberChoice {
  id: number;
  label: string;
  role: string;
  state: string;
}

/** The parameters' form: its fields, the values to show, and the query to keep (hidden inputs). */
export interface ParamsFormView {
  fields: ActionParamField[];
  values: Record<string, unknown>;
  keep: [string, string][];
  herdIds: number[];
  herdMembers: MemberChoice[];
}

interface Page {
  actionLabel: string;
  crumbs: Crumb[];
  /** The list the selection came from. */
  back: string;
}

export type ConfirmationView =
  | { kind: 'unknown-action' }
  /** Nothing ticked, or a selection that could not be read: nothing to plan. */
  | (Page & { kind: 'nothing'; title: string; message: string })
  /** Parameters missing or wrong: the form again, with what was given. */
  | (Page & { kind: 'params'; title: string; problem: string | null; form: ParamsFormView })
  /** Waves or parameters refused, or AWS not configured: said, and nothing planned. */
  | (Page & { kind: 'refused'; title: string; message: string })
  | (Page & { kind: 'plan' } & PlanView);

export interface PlanTargetView {
  key: string;
  target: PlannedTarget;
  href: string;
  wave: number | null;
}

export interface PlanView {
  title: string;
  actionName: string;
  retryOf: number | null;
  notices: { stale: boolean; mistyped: boolean; nothing: boolean; breakGlass?: boolean };
  missing: number[];
  paramsForm: ParamsFormView | null;
  /** The waves form (shown for more than one runnable target): the query to keep and each field's value. */
  wavesForm: { keep: [string, string][]; values: Record<string, string> } | null;
  wavesError: string | null;
  waves: { summary: string; waves: { wave: number; count: string; labels: string }[] } | null;
  diagrams: { key: string; label: string; title: string; before: DiagramInput; after: DiagramInput }[];
  diagramsNote: string | null;
  failoverNote: boolean;
  cost: string | null;
  onHerds: boolean;
  targets: PlanTargetView[];
  /** The confirmation form: null when nothing can run (every target refused, or the waves unreadable). */
  confirm: { hidden: [string, string][]; typeToConfirm: string | null; button: string } | null;
  /**
   * The approval policies covering it (null: none): who must approve, in words, and whether this person
   * may break glass (run it at once with a reason): 'offered', or why not (a sentence).
   */
  approval: { approvers: string; breakGlass: string } | null;
}

const noticeKeys = ['stale', 'mistyped', 'nothing', 'breakglass'];
const stringEntries = (raw: RawParams, keep: (k: string) => boolean) =>
  Object.entries(raw).filter(([k, v]) => keep(k) && typeof v === 'string') as [string, string][];

/** The confirmation page for `raw` (the page's query): what it shows, as data. */
export async function confirmationView(db: Db, access: Access, raw: RawParams): Promise<ConfirmationView> {
  const action = getAction(String(raw.action ?? ''));
  if (!action) return { kind: 'unknown-action' };
  const onHerds = isHerdAction(action);
  const noun = (n: number) => (onHerds ? (n === 1 ? 'herd' : 'herds') : n === 1 ? 'instance' : 'instances');
  // The changelist the selection came from (its filters, for "select all matching"): the herds or
  // instances list, or another list of the same objects (the DR pairs list is one of herds).
  const kind = onHerds ? 'herds' : 'instances';
  const from = typeof raw.from === 'string' ? getAdmin(raw.from) : undefined;
  const listAdmin = getAdmin(kind);
  if (!listAdmin) throw new Error(`the ${kind} admin is not registered`);
  const def = from && from.table === listAdmin.table ? from : listAdmin;
  const back = `/admin/${def.name}${raw.all === '1' ? toQueryString(def, parseListParams(def, raw, access)) : ''}`;
  const page: Page = {
    actionLabel: action.label,
    crumbs: [{ label: capitalize(def.labelPlural), href: back }, { label: action.label }],
    back,
  };

  let ids: number[] = [];
  let error = '';
  const picked = parseSelection(raw, onHerds ? MAX_ID : MAX_BIG_ID);
  if (!picked.ok)
    error = picked.empty ? '' : picked.error; // nothing ticked: the page says so itself
  else if (picked.selection.all) {
    try {
      // "All matching" means all the user may run this action on, never more.
      ids = await matchingIds(
        db,
        def,
        { ...parseListParams(def, raw, access), scope: environmentsWith(access, action.permission) },
        MAX_SELECTION,
      );
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
  } else {
    ids = picked.selection.ids;
  }
  if (error || !ids.length)
    return {
      ...page,
      kind: 'nothing',
      title: `Nothing to ${action.label.toLowerCase()}`,
      message: error
        ? `${error} Nothing has been changed.`
        : 'Items must be selected in order to perform actions on them. Nothing has been changed.',
    };

  const rawParams = paramsFromForm(raw);
  // Waves, when asked for: part of the plan (and its digest), shown here exactly as submit will run them.
  const asked = wavesFromForm(raw);
  let plan: Plan;
  try {
    plan = await planOperation(db, access, action, ids, rawParams, asked.ok ? asked.spec : null);
  } catch (err) {
    if (!(err instanceof ParamsError) && !(err instanceof WavesError) && !(err instanceof AwsNotConfiguredError)) throw err;
    if (err instanceof ParamsError && action.params) {
      // Parameters missing or wrong: nothing is planned; the form says what to give, with what was given.
      const members =
        onHerds && ids.length === 1 && action.params.fields.some((f) => f.kind === 'herd-member')
          ? await loadInstanceRefs(db, [], { herdIds: ids })
          : [];
      return {
        ...page,
        kind: 'params',
        title: `${action.label}: ${String(ids.length)} ${noun(ids.length)}`,
        problem: Object.keys(rawParams).length > 0 ? err.message : null,
        form: {
          fields: action.params.fields,
          values: rawParams,
          keep: stringEntries(raw, (k) => !k.startsWith('p.')),
          herdIds: onHerds ? ids : [],
          herdMembers: members,
        },
      };
    }
    return {
      ...page,
      kind: 'refused',
      title: action.label,
      message:
        err instanceof AwsNotConfiguredError
          ? `${err.message}.`
          : `Invalid ${err instanceof WavesError ? 'waves' : 'parameters'}: ${err.message}.`,
    };
  }
  const view = await planView(db, action, raw, plan, asked, noun, def.name !== kind ? def.name : null);
  return { ...page, kind: 'plan', ...view, approval: await approvalNeeded(db, access, action, plan) };
}

async function planView(
  db: Db,
  action: AnyAction,
  raw: RawParams,
  plan: Plan,
  asked: ReturnType<typeof wavesFromForm>,
  noun: (n: number) => string,
  from: string | null,
): Promise<Omit<PlanView, 'approval'>> {
  const onHerds = isHerdAction(action);
  const runnable = plan.targets.filter((t) => !t.refused);
  // A change of a herd's shape (switchover, failover, remaster): the herd as observed now, and as the
  // operation will leave it, side by side (for the first few targets: a page of 200 pictures says less).
  const reshaped = runnable.filter((t) => t.change).slice(0, DIAGRAMS_AT_MOST);
  const diagrams = (
    await Promise.all(
      reshaped.map(async (t) => {
        const now = await herdNow(db, t.herdId);
        if (!now || !t.change) return null;
        const before = diagramOf(now);
        return {
          key: String(t.instanceId ?? t.herdId),
          label: t.label,
          title: `${t.environment}/${t.herd} now`,
          before,
          after: herdAfter(before, t.change),
        };
      }),
    )
  ).filter((d) => d !== null);
  const rolling = asked.ok && asked.spec ? wavePlan(plan, asked.spec) : null;
  const waveOf = new Map(rolling?.waves.flatMap((w) => w.targets.map((t) => [t, w.wave] as const)));
  const herdIds = [...new Set(plan.targets.map((t) => t.herdId))];
  // A member of "the herd" can be chosen only when every target is in the same one.
  const herdMembers =
    action.params?.fields.some((f) => f.kind === 'herd-member') && herdIds.length === 1 ? await loadInstanceRefs(db, [], { herdIds }) : [];
  const retryOf = typeof raw.retryOf === 'string' ? parseId(raw.retryOf, MAX_BIG_ID) : null;
  const waveFields = ['size', 'canary', 'order', 'soak', 'lagMiB', 'lagSeconds', 'deadline', 'failures', 'failPercent'];
  return {
    title: `${action.label}: ${String(runnable.length)} of ${String(plan.targets.length)} ${noun(plan.targets.length)}`,
    actionName: action.name,
    retryOf,
    notices: {
      stale: raw.stale === '1',
      mistyped: raw.mistyped === '1',
      nothing: raw.nothing === '1',
      breakGlass: raw.breakglass === 'refused',
    },
    missing: plan.missing,
    paramsForm: action.params
      ? {
          fields: action.params.fields,
          values: plan.params,
          keep: stringEntries(raw, (k) => !k.startsWith('p.') && !noticeKeys.includes(k)),
          herdIds,
          herdMembers,
        }
      : null,
    wavesForm:
      runnable.length > 1
        ? {
            keep: stringEntries(raw, (k) => !k.startsWith('w.') && !noticeKeys.includes(k)),
            values: Object.fromEntries(waveFields.map((f) => [f, typeof raw[`w.${f}`] === 'string' ? String(raw[`w.${f}`]) : ''])),
          }
        : null,
    wavesError: asked.ok ? null : asked.error,
    waves: rolling && {
      summary: rolling.summary,
      waves: rolling.waves.map((w) => ({
        wave: w.wave,
        count: `${String(w.targets.length)} ${noun(w.targets.length)}`,
        labels:
          w.targets
            .slice(0, 12)
            .map((t) => t.label)
            .join(', ') + (w.targets.length > 12 ? `, and ${String(w.targets.length - 12)} more` : ''),
      })),
    },
    diagrams,
    diagramsNote:
      runnable.filter((t) => t.change).length > DIAGRAMS_AT_MOST
        ? `The first ${String(DIAGRAMS_AT_MOST)} herds are drawn; every target’s plan is in the table.`
        : null,
    failoverNote: action.name === 'dr-failover',
    cost: plan.cost ? costTotalText(plan.cost) : null,
    onHerds,
    targets: plan.targets.map((t) => ({
      key: t.instanceId === null ? `h${String(t.herdId)}` : String(t.instanceId),
      target: t,
      href: t.instanceId === null ? `/herds/${String(t.herdId)}` : `/admin/instances/${String(t.instanceId)}`,
      wave: waveOf.get(t) ?? null,
    })),
    confirm:
      runnable.length > 0 && asked.ok
        ? {
            hidden: [
              ['action', action.name],
              ['ids', plan.targets.map((t) => t.instanceId ?? t.herdId).join(',')],
              ['digest', plan.digest],
              ['key', plan.idempotencyKey],
              ...(from !== null ? [['from', from] as [string, string]] : []),
              ...(retryOf !== null ? [['retryOf', String(retryOf)] as [string, string]] : []),
              ...Object.entries(plan.params).map(([k, v]) => [`p.${k}`, String(v)] as [string, string]),
              ...Object.entries(wavesToForm(rolling?.spec ?? null)),
            ],
            typeToConfirm: plan.typeToConfirm,
            button:
              `${action.label} ${String(runnable.length)} ${noun(runnable.length)}` +
              (rolling ? ` in ${String(rolling.waves.length)} wave${rolling.waves.length === 1 ? '' : 's'}` : ''),
          }
        : null,
  };
}

/** What the approval policies ask of this plan, as its confirmation page says it (null: nothing). */
async function approvalNeeded(db: Db, access: Access, action: AnyAction, plan: Plan): Promise<PlanView['approval']> {
  if (access.userId === null) return null;
  const req = await requirementFor(db, plan);
  if (!req) return null;
  const names = [...new Set(plan.targets.filter((t) => !t.refused).map((t) => t.environment))].sort();
  const forbidden = req.policies.some((p) => p.breakGlassForbidden.includes(action.name));
  return {
    approvers: approversText(req, names, access.username),
    breakGlass: !canOnAll(access, 'admin', req.environmentIds)
      ? 'break glass is an admin\u2019s, in every environment of the plan'
      : forbidden
        ? `an approval policy forbids break glass for ${action.name} here`
        : 'offered',
  };
}
