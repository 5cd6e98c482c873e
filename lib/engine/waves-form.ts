// Waves travel in the confirmation page's URL and forms as `w.<name>` fields (as parameters travel as
// `p.<name>`): read here into a spec that wavesSchema validates, and written back the same way.
import { waveSize, wavesSchema, WAVE_ORDERS, type WaveSpec } from '@/lib/engine/waves';

/** The fields, their names in forms and URLs. */
export const WAVE_FIELDS = ['size', 'canary', 'order', 'soak', 'lagMiB', 'lagSeconds', 'deadline', 'failures', 'failPercent'] as const;
type Field = (typeof WAVE_FIELDS)[number];

const MIB = 1024 * 1024;

/**
 * The waves asked for in `entries`: null when none were (no `w.size`), the spec when they fit, or what
 * is wrong with them in words. A gate is asked for by a soak time; a budget by failures or a percentage.
 */
export function wavesFromForm(entries: Record<string, unknown>): { ok: true; spec: WaveSpec | null } | { ok: false; error: string } {
  const v = (k: Field) => {
    const x = entries[`w.${k}`];
    return typeof x === 'string' ? x.trim() : '';
  };
  const given = WAVE_FIELDS.filter((k) => entries[`w.${k}`] !== undefined && entries[`w.${k}`] !== '');
  const repeated = given.find((k) => typeof entries[`w.${k}`] !== 'string');
  if (repeated) return { ok: false, error: `${repeated}: give it once` };
  // Any wave field without a size is a mistake to say, not waves to drop silently (the order alone is the default).
  if (!v('size'))
    return given.some((k) => k !== 'order') ? { ok: false, error: 'wave size: give one to run in waves' } : { ok: true, spec: null };
  const size = /^(\d{1,6})(%?)$/.exec(v('size'));
  if (!size) return { ok: false, error: 'wave size: a number of targets (3) or a percentage of them (10%)' };
  // Whole numbers, as the API takes them: 0.4 s of soak is not rounded to none. A lag in MiB may have
  // a fraction (it is counted in bytes).
  const num = (k: Field, label: string, scale = 1): number | undefined | string => {
    const s = v(k);
    if (!s) return undefined;
    if (!/^\d+(\.\d+)?$/.test(s)) return `${label}: a number`;
    if (scale === 1 && !/^\d+$/.test(s)) return `${label}: a whole number`;
    return Math.round(Number(s) * scale);
  };
  const fields = {
    canary: num('canary', 'canary'),
    soakSeconds: num('soak', 'soak time'),
    maxLagBytes: num('lagMiB', 'lag limit (MiB)', MIB),
    maxLagSeconds: num('lagSeconds', 'lag limit (seconds)'),
    deadlineSeconds: num('deadline', 'gate deadline'),
    failures: num('failures', 'failure budget'),
    percent: num('failPercent', 'failure budget (%)'),
  };
  const bad = Object.values(fields).find((x) => typeof x === 'string');
  if (typeof bad === 'string') return { ok: false, error: bad };
  const n = fields as Record<keyof typeof fields, number | undefined>;
  const order = v('order') || 'listed';
  const gateAsked = n.soakSeconds !== undefined;
  const raw = {
    ...(size[2] ? { percent: Number(size[1]) } : { size: Number(size[1]) }),
    ...(n.canary !== undefined ? { canary: n.canary } : {}),
    order,
    ...(gateAsked
      ? {
          gate: {
            soakSeconds: n.soakSeconds,
            ...(n.maxLagBytes !== undefined ? { maxLagBytes: n.maxLagBytes } : {}),
            ...(n.maxLagSeconds !== undefined ? { maxLagSeconds: n.maxLagSeconds } : {}),
            ...(n.deadlineSeconds !== undefined ? { deadlineSeconds: n.deadlineSeconds } : {}),
          },
        }
      : {}),
    ...(n.failures !== undefined || n.percent !== undefined
      ? {
          budget: {
            ...(n.failures !== undefined ? { failures: n.failures } : {}),
            ...(n.percent !== undefined ? { percent: n.percent } : {}),
          },
        }
      : {}),
  };
  if (!(WAVE_ORDERS as readonly string[]).includes(order)) return { ok: false, error: `order: one of ${WAVE_ORDERS.join(', ')}` };
  const parsed = wavesSchema.safeParse(raw);
  if (!parsed.success) {
    const [issue] = parsed.error.issues;
    return { ok: false, error: issue ? `${issue.path.join('.') || 'waves'}: ${issue.message.replace(/\.$/, '')}` : 'the waves do not fit' };
  }
  return { ok: true, spec: parsed.data };
}

/** The spec as `w.<name>` fields (hidden inputs of the confirm form, or a query string). */
export function wavesToForm(spec: WaveSpec | null): Record<string, string> {
  if (!spec) return {};
  const out: Partial<Record<Field, string>> = {
    size: waveSize(spec),
    canary: String(spec.canary),
    order: spec.order,
  };
  if (spec.gate) {
    out.soak = String(spec.gate.soakSeconds);
    out.lagMiB = String(spec.gate.maxLagBytes / MIB);
    out.lagSeconds = String(spec.gate.maxLagSeconds);
    out.deadline = String(spec.gate.deadlineSeconds);
  }
  if (spec.budget?.failures !== undefined) out.failures = String(spec.budget.failures);
  if (spec.budget?.percent !== undefined) out.failPercent = String(spec.budget.percent);
  return Object.fromEntries(Object.entries(out).map(([k, x]) => [`w.${k}`, x]));
}
