// Waves with no lab: how targets are cut into waves, what the spec accepts, how a herd is judged.
import { describe, expect, it } from 'vitest';
import type { Observed } from '@/lib/fleet/observe';
import { assignWaves, canaryProblem, describeWaves, judgeHerd, wavesSchema, type GateMember } from '@/lib/engine/waves';
import { wavesFromForm } from '@/lib/engine/waves-form';

const at = (sites: string[]) => sites.map((site, i) => ({ site, environment: i % 2 ? 'staging' : 'production' }));
const spec = (raw: unknown) => wavesSchema.parse(raw);

describe('cutting targets into waves', () => {
  it('waves of a size in the listed order, the last one smaller', () => {
    expect(assignWaves(at(Array(7).fill('a')), spec({ size: 3 }))).toEqual([1, 1, 1, 2, 2, 2, 3]);
  });

  it('a canary wave of its own first, then waves of the size', () => {
    expect(assignWaves(at(Array(7).fill('a')), spec({ size: 3, canary: 1 }))).toEqual([1, 2, 2, 2, 3, 3, 3]);
  });

  it('a percentage of the targets, rounded up, never zero', () => {
    expect(assignWaves(at(Array(10).fill('a')), spec({ percent: 25 }))).toEqual([1, 1, 1, 2, 2, 2, 3, 3, 3, 4]);
    expect(assignWaves(at(Array(3).fill('a')), spec({ percent: 1 }))).toEqual([1, 2, 3]);
  });

  it('by site: one site after another (in name order), a wave never spanning two, listed order kept within a site', () => {
    const sites = ['west', 'east', 'west', 'east', 'east', 'west'];
    const waves = assignWaves(at(sites), spec({ size: 2, order: 'site' }));
    // east: positions 1, 3, 4 -> waves 1, 1, 2; west: 0, 2, 5 -> waves 3, 3, 4
    expect(waves).toEqual([3, 1, 3, 1, 2, 4]);
  });

  it('by environment, with a canary taken from the first environment', () => {
    const waves = assignWaves(at(['a', 'a', 'a', 'a']), spec({ size: 5, canary: 1, order: 'environment' }));
    // production: positions 0, 2; staging: 1, 3
    expect(waves).toEqual([1, 3, 2, 3]);
  });

  it('a canary never spans two sites or environments: it comes from the first one alone', () => {
    // east: positions 1 (one target); west: 0, 2.
    expect(assignWaves(at(['west', 'east', 'west']), spec({ size: 5, canary: 2, order: 'site' }))).toEqual([2, 1, 2]);
  });

  it('a canary larger than the targets is one wave', () => {
    expect(assignWaves(at(['a', 'b']), spec({ size: 1, canary: 5 }))).toEqual([1, 1]);
  });

  it('says what it will do in words', () => {
    const s = spec({ size: 3, canary: 1, order: 'site', gate: { soakSeconds: 30, maxLagBytes: 16777216 }, budget: { failures: 2 } });
    expect(describeWaves(s, 4)).toBe(
      '4 waves; a canary of 1 first; then 3 at a time, site by site; between waves every herd touched stays healthy for 30 s (a writable primary, replicas streaming, lag under 16 MiB and 30 s), or the operation pauses after 600 s; pauses after 2 failed targets',
    );
  });
});

describe('what a waves spec accepts', () => {
  it('refuses a size and a percentage together, neither, zero, fractions and unknown fields, saying where', () => {
    const problems = (raw: unknown) => wavesSchema.safeParse(raw).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(problems({ size: 2, percent: 10 })).toEqual(['size: give a wave size or a percentage, not both']);
    expect(problems({})).toEqual(['size: give a wave size or a percentage']);
    expect(problems({ size: 1, budget: {} })).toEqual(['budget: give a number of failures or a percentage (or leave the budget out)']);
    expect(problems({ size: 0 })?.[0]).toMatch(/^size: /);
    expect(problems({ size: 1.5 })?.[0]).toMatch(/^size: a whole number/);
    expect(problems({ size: 1, sise: 2 })?.[0]).toMatch(/sise/);
    expect(problems({ size: 1, gate: { soakSeconds: 60, deadlineSeconds: 30 } })).toEqual([
      'gate.deadlineSeconds: the deadline must be at least the soak time',
    ]);
    expect(problems({ size: 1, budget: { percent: 101 } })?.[0]).toMatch(/^budget.percent: /);
  });

  it('refuses a canary larger than the targets, or by site than the first site\u2019s (it never spans two)', () => {
    expect(canaryProblem(at(['a', 'b', 'c']), spec({ size: 1, canary: 50 }))).toBe(
      'a canary of 50 is more than the 3 targets that can run',
    );
    expect(canaryProblem(at(['a', 'b', 'c']), spec({ size: 1, canary: 3 }))).toBeNull();
    expect(canaryProblem(at(['west', 'east', 'west']), spec({ size: 5, canary: 2, order: 'site' }))).toBe(
      'a canary of 2 is more than the 1 target of the first site (east): a canary never spans two',
    );
    expect(canaryProblem(at(['west', 'east', 'west']), spec({ size: 5, canary: 2, order: 'listed' }))).toBeNull();
    expect(canaryProblem(at(['a']), spec({ size: 1 }))).toBeNull();
  });

  it('the confirmation page\u2019s fields: whole numbers, as the API takes them (a lag in MiB may have a fraction)', () => {
    const form = (fields: Record<string, string>) =>
      wavesFromForm(Object.fromEntries(Object.entries(fields).map(([k, v]) => [`w.${k}`, v])));
    expect(form({ size: '1', canary: '1.5' })).toEqual({ ok: false, error: 'canary: a whole number' });
    expect(form({ size: '1', soak: '0.4' })).toEqual({ ok: false, error: 'soak time: a whole number' });
    expect(form({ size: '1', soak: '5', deadline: '30.5' })).toEqual({ ok: false, error: 'gate deadline: a whole number' });
    const ok = form({ size: '1', soak: '5', lagMiB: '0.5' });
    expect(ok.ok && ok.spec?.gate?.maxLagBytes).toBe(512 * 1024);
  });

  it('fills in the gate and the order', () => {
    expect(spec({ size: 2, gate: {} })).toEqual({
      size: 2,
      canary: 0,
      order: 'listed',
      gate: { soakSeconds: 30, maxLagBytes: 16 * 1024 * 1024, maxLagSeconds: 30, deadlineSeconds: 600 },
    });
  });
});

describe('judging a herd at the gate', () => {
  const primary = (lsn = '0/3000000'): Observed => ({ reachable: true, inRecovery: false, lsn });
  const replica = (lsn: string, extra: Partial<Observed> = {}): Observed => ({
    reachable: true,
    inRecovery: true,
    lsn,
    replayLagSeconds: 0,
    replayPaused: false,
    walReceiver: { status: 'streaming', senderHost: 'p', senderPort: 5432, receivedTli: 1 },
    ...extra,
  });
  const m = (label: string, observed: Observed, expected = true): GateMember => ({ label, expected, observed });
  const gate = { maxLagBytes: 1024 * 1024, maxLagSeconds: 10 };

  it('passes one writable primary with replicas streaming within the limits', () => {
    expect(judgeHerd('h', [m('p', primary()), m('r1', replica('0/3000000')), m('r2', replica('0/2F00000'))], gate)).toBeNull();
  });

  it('fails, saying why, on each thing the gate watches', () => {
    expect(judgeHerd('h', [m('r1', replica('0/3000000'))], gate)).toBe('h: no writable primary');
    expect(judgeHerd('h', [m('p', primary()), m('q', primary())], gate)).toBe('h: 2 writable primaries (p, q)');
    expect(judgeHerd('h', [m('p', primary()), m('r', { reachable: false, error: 'connect ECONNREFUSED' })], gate)).toBe(
      'h: r not answering (connect ECONNREFUSED)',
    );
    expect(judgeHerd('h', [m('p', primary()), m('r', replica('0/3000000', { walReceiver: null }))], gate)).toBe(
      'h: r not streaming (no WAL receiver)',
    );
    expect(judgeHerd('h', [m('p', primary()), m('r', replica('0/3000000', { replayPaused: true }))], gate)).toBe('h: r replay paused');
    expect(judgeHerd('h', [m('p', primary('0/3200000')), m('r', replica('0/3000000'))], gate)).toBe('h: r 2 MiB behind (limit 1 MiB)');
    expect(judgeHerd('h', [m('p', primary()), m('r', replica('0/2FF0000', { replayLagSeconds: 12.5 }))], gate)).toBe(
      'h: r 12.5 s behind (limit 10 s)',
    );
    expect(judgeHerd('h', [m('p', primary()), m('r', primary()), m('s', replica('0/3000000'))], gate)).toBe(
      'h: 2 writable primaries (p, r)',
    );
  });

  it('names every member that fails, not only the first', () => {
    const down: Observed = { reachable: false, error: 'connect ECONNREFUSED', refused: true };
    expect(judgeHerd('h', [m('p', primary()), m('r1', down), m('r2', replica('0/3000000', { replayPaused: true }))], gate)).toBe(
      'h: r1 not answering (connect ECONNREFUSED), r2 replay paused',
    );
  });

  it('a replica that has replayed everything its quiet primary wrote is not behind, however old its last transaction', () => {
    // After a restart the receiver restarts at a segment's start: received < replayed, and the last
    // replayed transaction may be minutes old on a primary that writes nothing.
    expect(
      judgeHerd('h', [m('p', primary()), m('r', replica('0/3000000', { receiveLsn: '0/2000000', replayLagSeconds: 136.3 }))], gate),
    ).toBeNull();
  });

  it('does not wait for members it does not expect (stopped before the operation, fenced, stopped by it on purpose)', () => {
    const down: Observed = { reachable: false, error: 'connect ECONNREFUSED', refused: true };
    expect(judgeHerd('h', [m('p', primary()), m('r', down, false), m('f', down, false)], gate)).toBeNull();
    expect(judgeHerd('h', [m('p', primary()), m('r', down, false), m('s', down)], gate)).toBe('h: s not answering (connect ECONNREFUSED)');
  });
});
