// Records a target's steps in operation_steps as they run, so the operation page can show them.
import { and, eq } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { operationSteps } from '@/db/schema';
import { redact } from '@/lib/ssh/quote';
import type { StepRecorder } from './pipeline';

const TAIL = 8000;

export function dbRecorder(db: Db, targetId: number, secrets: string[] = []): StepRecorder {
  return {
    async start(seq, name) {
      await db.insert(operationSteps).values({ targetId, seq, name, status: 'running' })
        .onConflictDoUpdate({ target: [operationSteps.targetId, operationSteps.seq], set: { name, status: 'running', startedAt: new Date(), finishedAt: null, exitCode: null, stdoutTail: '', stderrTail: '', command: '' } });
    },
    async finish(seq, rec) {
      await db.update(operationSteps).set({
        status: rec.status,
        command: redact(rec.command ?? '', secrets),
        exitCode: rec.exitCode ?? null,
        stdoutTail: redact((rec.stdout ?? '').slice(-TAIL), secrets),
        stderrTail: redact((rec.stderr ?? '').slice(-TAIL), secrets),
        finishedAt: new Date(),
      }).where(and(eq(operationSteps.targetId, targetId), eq(operationSteps.seq, seq)));
    },
  };
}
