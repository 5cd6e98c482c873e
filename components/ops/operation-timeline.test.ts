import { describe, expect, it } from 'vitest';
import type { OperationView } from '@/lib/engine/operation-view';
import { timelineRows } from './operation-timeline';

const at = (s: number) => new Date(Date.UTC(2026, 10, 25, 12, 0, 0) + s * 1000).toISOString();
const step = (seq: number, from: number, to: number | null, status = 'succeeded') => ({
  seq,
  name: `step ${seq}`,
  status,
  command: '',
  exitCode: null,
  output: '',
  startedAt: at(from),
  finishedAt: to === null ? null : at(to),
});
const target = (id: number, label: string, steps: ReturnType<typeof step>[], extra: Partial<OperationView['targets'][number]> = {}) => ({
  id,
  instanceId: id,
  herdId: 1,
  label,
  status: 'succeeded',
  wave: 1,
  held: false,
  error: null,
  cleanupFailed: false,
  outcome: null,
  attempts: 1,
  steps,
  ...extra,
});
const op = (targets: OperationView['targets'], waves = false): OperationView => ({
  id: 1,
  action: 'restart',
  params: {},
  status: 'running',
  requestedBy: 'alice',
  createdAt: at(0),
  startedAt: at(0),
  finishedAt: null,
  cancelRequested: false,
  pausedAt: null,
  pausedReason: null,
  waves: waves ? { summary: '', current: 1, list: [] } : null,
  cursor: '',
  hiddenTargets: 0,
  workersAlive: 1,
  targets,
});

describe('timelineRows', () => {
  it('draws each target as its wait, then its steps with the gaps between them, from the operation\u2019s start', () => {
    const { rows, width, segments } = timelineRows(
      op([
        target(2, 'db-2', [step(1, 10, 12), step(2, 13, 20, 'failed')]),
        target(1, 'db-1', [step(1, 0, 4), step(2, 4, 9)]),
        target(3, 'db-3', [], { status: 'queued' }),
      ]),
      Date.parse(at(25)),
    );
    expect(rows.map((r) => r.target)).toEqual(['db-1', 'db-2', 'db-3']);
    const words = (i: number) => rows[i]!.segments.map((s) => `${s.kind}:${s.status}:${s.seconds}`);
    expect(words(0)).toEqual(['step:succeeded:4', 'step:succeeded:5']);
    expect(words(1)).toEqual(['waiting:waiting:10', 'step:succeeded:2', 'gap::1', 'step:failed:7']);
    // Queued with no step yet: waiting until now.
    expect(words(2)).toEqual(['waiting:waiting:25']);
    expect(rows[1]!.s3).toBe(7);
    expect(width).toBe(25);
    expect(segments).toBe(4);
  });

  it('says a target held for its wave is held, sorts by wave, and draws a running step up to now', () => {
    const { rows } = timelineRows(
      op(
        [
          target(1, 'db-b', [step(1, 0, null, 'running')], { wave: 1, status: 'running' }),
          target(2, 'db-a', [], { wave: 2, held: true, status: 'queued' }),
        ],
        true,
      ),
      Date.parse(at(30)),
    );
    expect(rows.map((r) => r.label)).toEqual(['w1 db-b', 'w2 db-a']);
    expect(rows[0]!.segments).toEqual([{ kind: 'step', seconds: 30, name: 'step 1', status: 'running' }]);
    expect(rows[1]!.segments[0]).toMatchObject({ kind: 'held', seconds: 30 });
  });
});
