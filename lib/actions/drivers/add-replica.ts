// The capability Add replica asks of a driver whose control plane makes a herd's new replica itself (RDS's
// read replica). A driver without it, whose herd's hosts pgherd reaches over SSH, gets the action's own plan:
// a new member laid out on a server or a new EC2 instance, seeded, streaming.
import { z } from 'zod';
import type { Db } from '@/db/client';
import type { ActionPlan } from '@/lib/engine/define-action';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { Refusal } from '@/lib/fleet/refusal';

/** Add replica's parameters for a herd whose control plane makes the replica (RDS): its class and its zone. */
export const madeReplicaFields = {
  instanceClass: z
    .string()
    .trim()
    .regex(/^db\.[a-z0-9-]+\.[a-z0-9-]+$/, 'an RDS class such as db.m6i.large')
    .optional(),
  /** Left out: RDS picks one. */
  availabilityZone: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z
      .string()
      .trim()
      .regex(
        /^[a-z]{2}(-[a-z]+)+-\d+([a-z]|-[a-z]+-\d+[a-z])$/,
        'an availability zone such as eu-west-1b (or a Local Zone, us-west-2-lax-1a)',
      )
      .optional(),
  ),
};

/** What Add replica is asked, as the driver sees it: each driver takes the parameters it knows and refuses the rest. */
export interface AddReplicaAsk {
  serverId?: number | undefined;
  instanceType?: string | undefined;
  /** The class of a replica the control plane makes (db.m6i.large). */
  instanceClass?: string | undefined;
  /** Its zone (left out: the control plane picks one). */
  availabilityZone?: string | undefined;
  like?: number | undefined;
  market: 'on-demand' | 'spot';
  seed: 'auto' | 'repository' | 'replica' | 'primary';
  port?: number | undefined;
  dataDirectory?: string | undefined;
  sslCertFile?: string | undefined;
  sslKeyFile?: string | undefined;
}

export interface ReplicaMaker<P> {
  /** Reads what its plans need (what the control plane offers), once for all its herds. */
  prepare(herds: HerdRef[], params: P, db: Db): Promise<unknown>;
  plan<S>(h: HerdRef, params: P, prepared: unknown): ActionPlan<S> | Refusal;
}
