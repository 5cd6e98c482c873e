// Actions made of other actions' steps (a herd resize, a DR drill): each part's steps run on its own
// part of the whole action's state, named for the whole action's record.
import type { ActionStep } from '@/lib/engine/define-action';

/** A step of a part, run on its part of the state, named for the whole action's record. */
export function lift<A, S>(s: ActionStep<A>, pick: (whole: S) => A, name: (n: string) => string): ActionStep<S> {
  return {
    ...s,
    name: name(s.name),
    run: (x) => s.run({ ...x, state: pick(x.state) }),
    always: s.always && lift(s.always, pick, name),
  };
}

/** A part's steps, the first of which finishes the part before it (`settles`: its cleanups run first). */
export function part<A, S>(steps: ActionStep<A>[], pick: (whole: S) => A, name: (n: string) => string, settles: boolean): ActionStep<S>[] {
  return steps.map((s, k) => ({ ...lift(s, pick, name), ...(k === 0 && settles ? { settles: true } : {}) }));
}

/** A part of a whole action (a member's move, a switchover): its words in the order, and its steps, the first settling the parts before when `settles`. */
export interface Part<S> {
  order: string;
  steps: (settles: boolean) => ActionStep<S>[];
}

/** The parts' steps one after another: each part after the first finishes the parts before it first. */
export const inTurn = <S>(parts: Part<S>[]): ActionStep<S>[] => parts.flatMap((x, k) => x.steps(k > 0));
