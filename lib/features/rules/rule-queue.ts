// The rules' queue: one job a fire group's fire, a one-time rule's fire, or a run a person asked for.
import { createHash } from 'node:crypto';
import { Queue } from 'bullmq';
import type IORedis from 'ioredis';

export const RULE_QUEUE = 'pgherd-rules';

/**
 * A fire group's fire (every rule with that cron expression in that time zone), a one-time rule's (its
 * time in ms: a delayed job's own clock drifts by milliseconds), or a run asked for.
 */
export type RuleJob = { group: string } | { ruleId: number; version: number; dueAt?: number } | { runId: number };

export function ruleQueue(connection: IORedis, prefix: string): Queue<RuleJob> {
  return new Queue<RuleJob>(RULE_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: { removeOnComplete: { count: 1000 }, removeOnFail: { count: 1000 }, attempts: 1 },
  });
}

/** A fire group's scheduler: named by a digest of the group, so the same group is the same scheduler on every worker. */
export const groupSchedulerId = (group: string) => `group:${createHash('sha256').update(group).digest('hex').slice(0, 32)}`;

// (BullMQ refuses a custom job id with a colon.)
export const runJobId = (runId: number) => `run-${runId}`;

/** Adds the job of a run a person asked for (the same id twice is one job). */
export async function enqueueRun(queue: Queue<RuleJob>, runId: number): Promise<void> {
  await queue.add('run', { runId }, { jobId: runJobId(runId) });
}
