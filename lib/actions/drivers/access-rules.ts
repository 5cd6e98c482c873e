// The capability Apply fleet objects asks of a herd's driver for its access rules: where pg_hba lives and
// who writes it. The action renders the lines, checks they shut out none of the connections the herd
// needs, and reads every member's rules back; the driver says how the file is written on its control
// plane (each member's file over SSH, or Patroni's configuration, which Patroni writes on every member).
import type { ActionStep, RunContext } from '@/lib/engine/define-action';
import type { InstanceRef } from '@/lib/fleet/instance-ref';

export interface AccessRulesPlane {
  /** Who writes the file, in words (the plan's "Access rules written by"). */
  runBy: string;
  /**
   * The steps that write `text` (the whole file; `lines` its rules) where each member reads it, and
   * make every member load it (`rules`: each line as pg_hba_file_rules will say it, ruleKey). What they replace is put back at the end unless `kept` says the action
   * got as far as keeping it (every member read back). `hbaFile`: where the primary reads its pg_hba
   * (SHOW hba_file), null when not known.
   */
  write<S>(
    members: InstanceRef[],
    primary: InstanceRef,
    w: { text: string; lines: string[]; rules: string[]; hbaFile: string | null; kept: (x: RunContext<S>) => boolean },
  ): ActionStep<S>[];
}
