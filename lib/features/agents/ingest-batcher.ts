// Reports that arrive while a write is in progress are written together: a web process under many
// agents sends one statement for many reports instead of one each (group commit). Nothing waits on a
// timer: a report that finds the queue idle is written at once, alone. At most `writers` statements run
// at a time; a server has at most one report in flight (its next one waits for the write in progress),
// and a batch that fails is retried one report at a time, so one bad report fails alone.
import type { Db } from '@/db/client';
import { ingestReport, ingestReports, type AgentServer, type IngestResult } from './ingest';
import type { Report } from '@/lib/agent/report';
import { setting } from '@/lib/settings/settings';

interface Waiting {
  server: AgentServer;
  report: Report;
  resolve: (r: IngestResult) => void;
  reject: (e: unknown) => void;
}

export class IngestQueue {
  private waiting: Waiting[] = [];
  private inFlight = new Set<number>();
  private writing = 0;
  /**
   * Reports written and statements sent, since the start (their ratio is the mean batch size), and
   * instances and herds the reports created.
   */
  readonly stats = { reports: 0, statements: 0, created: 0 };

  constructor(
    private readonly db: Db,
    private readonly opts: { writers?: number; maxBatch?: number } = {},
  ) {}

  submit(server: AgentServer, report: Report): Promise<IngestResult> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ server, report, resolve, reject });
      this.pump();
    });
  }

  private pump() {
    const writers = this.opts.writers ?? 2;
    const max = this.opts.maxBatch ?? 100;
    while (this.writing < writers && this.waiting.length) {
      const batch: Waiting[] = [];
      const later: Waiting[] = [];
      const ids = new Set<number>();
      for (const w of this.waiting) {
        if (batch.length < max && !this.inFlight.has(w.server.id) && !ids.has(w.server.id)) {
          batch.push(w);
          ids.add(w.server.id);
        } else {
          later.push(w);
        }
      }
      if (!batch.length) return;
      this.waiting = later;
      this.writing++;
      for (const id of ids) this.inFlight.add(id);
      void this.write(batch).finally(() => {
        this.writing--;
        for (const id of ids) this.inFlight.delete(id);
        this.pump();
      });
    }
  }

  private async write(batch: Waiting[]) {
    try {
      const results = await ingestReports(
        this.db,
        batch.map(({ server, report }) => ({ server, report })),
      );
      this.stats.reports += batch.length;
      this.stats.statements++;
      for (const [i, w] of batch.entries()) {
        const result = results[i];
        if (result) this.stats.created += result.created + result.herdsCreated;
        if (result) w.resolve(result);
        else w.reject(new Error(`ingest queue: no result for server ${w.server.hostname}`));
      }
    } catch (err) {
      const [only, ...others] = batch;
      if (only && !others.length) {
        only.reject(err);
        return;
      }
      // One report may be what failed (or a deadlock with another process's batch): each alone.
      for (const w of batch) {
        try {
          const result = await ingestReport(this.db, w.server, w.report);
          this.stats.created += result.created + result.herdsCreated;
          w.resolve(result);
          this.stats.reports++;
          this.stats.statements++;
        } catch (e) {
          w.reject(e);
        }
      }
    }
  }
}

const g = globalThis as unknown as { __pgherdIngestQueue?: IngestQueue };

/** The web process's queue, over its database pool. */
export function ingestQueue(db: Db): IngestQueue {
  g.__pgherdIngestQueue ??= new IngestQueue(db, { writers: setting('PGHERD_INGEST_WRITERS') });
  return g.__pgherdIngestQueue;
}
