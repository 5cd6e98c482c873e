// What the RDS steps share: a wait on RDS's status whose record says every status RDS went through.
import { rdsClient } from '@/lib/adapters/aws/config';
import { waitRds, type RdsInstance } from '@/lib/adapters/aws/rds';
import type { WaitBounds } from '@/lib/adapters/aws/ec2';
import type { RunContext } from '@/lib/engine/define-action';

/**
 * Waits until RDS says the DB instance is what `done` wants (given the statuses seen so far), within
 * `bounds`; the step's record says "RDS said: modifying -> available", whether it ends well or not.
 */
export async function waitRdsNoted<S>(
  x: RunContext<S>,
  region: string,
  identifier: string,
  wanted: string,
  done: (i: RdsInstance, seen: string[]) => boolean,
  bounds: WaitBounds,
): Promise<RdsInstance> {
  const seen: string[] = [];
  try {
    return await waitRds(rdsClient(region), {
      region,
      identifier,
      wanted,
      done: (i) => done(i, seen),
      bounds: { ...bounds, signal: x.signal },
      seen: (i) => {
        if (seen.at(-1) !== i.status) seen.push(i.status);
      },
    });
  } finally {
    x.note({ stdout: `RDS said: ${seen.join(' -> ') || 'nothing'}` });
  }
}
