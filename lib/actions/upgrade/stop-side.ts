// A side of a major upgrade taken away: each member stopped (fast), whatever the inventory says of it. One
// already stopped, or whose folder is gone, is what was wanted; its data directory stays on disk.
import type { ActionDeps } from '@/lib/engine/define-action';
import type { StepContext } from '@/lib/engine/pipeline';
import { binDir } from '@/lib/fleet/drivers';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { execNoted } from '@/lib/actions/steps/exec-noted';

export async function stopSide(deps: ActionDeps, x: StepContext, members: InstanceRef[]): Promise<void> {
  for (const m of members) {
    const bins = m.binDir || binDir(m.pgVersion);
    const r = await execNoted(deps, m, x, [`${bins}/pg_ctl`, '-D', m.dataDirectory, '-m', 'fast', '-w', '-t', '120', 'stop'], 150_000);
    if (r.code !== 0 && !/not running|No such file|No such process|does not exist/i.test(r.stderr))
      throw new Error(`${m.label}: pg_ctl stop failed: ${r.stderr.trim()}`);
  }
}
