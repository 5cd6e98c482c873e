// What pgherd-agent sends: facts about the Postgres instances on one server, as each instance says
// them. The server decides what they mean (herd, role, lag). Validated whole: a report that does not
// fit is refused with the path and reason of each problem, and nothing is written.
import { z } from 'zod';
import { isPlainName } from '@/lib/adapters/validation/text';

export const MAX_REPORT_BYTES = 256 * 1024;
export const MAX_INSTANCES = 64;

/** An LSN as Postgres prints it: two hex numbers, "16/B374D848". */
export const lsnSchema = z
  .string()
  .regex(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i, 'an LSN such as 16/B374D848')
  // pgherd keeps LSNs in bigint columns: one from 80000000/0 on (2^63 bytes of WAL) is refused, not a 500.
  .refine((v) => parseInt(v.split('/')[0] ?? '', 16) < 0x80000000, 'an LSN below 80000000/0');
const port = z.number().int().min(1).max(65535);
const host = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.:_%-]+$/, 'a host name or address');
const path = z
  .string()
  .max(1000)
  .regex(/^\//, 'an absolute path')
  .refine(isPlainName, 'an absolute path without control, invisible or text-direction characters');

export const replicaSchema = z
  .object({
    /** client_addr in pg_stat_replication (null over a Unix socket). */
    clientAddr: z.string().max(64).nullable(),
    applicationName: z.string().max(200).default(''),
    state: z.string().max(32),
    sentLsn: lsnSchema.nullable(),
    replayLsn: lsnSchema.nullable(),
  })
  .strict();

/** A filesystem's size and what an unprivileged writer may still use of it, in bytes. */
const fsSpace = z
  .object({
    freeBytes: z
      .number()
      .int()
      .min(0)
      .max(2 ** 53),
    totalBytes: z
      .number()
      .int()
      .min(1)
      .max(2 ** 53),
    /** The block device it is on, as the mount table says (/dev/nvme1n1, /dev/loop3). */
    device: z
      .string()
      .max(200)
      .regex(/^\/dev\/[A-Za-z0-9/_.:-]+$/, 'a /dev path')
      .optional(),
    /** Its filesystem type (xfs, ext4). */
    fsType: z
      .string()
      .regex(/^[a-z0-9_.]{1,32}$/, 'a filesystem type')
      .optional(),
    /** Where it is mounted. */
    mountPoint: z
      .string()
      .max(400)
      .regex(/^\/[^\n\0]*$/, 'an absolute path')
      .optional(),
    /** The EBS volume behind the device, where the host says (an NVMe device's serial: vol0123... is vol-0123...). */
    volumeId: z
      .string()
      .regex(/^vol-[0-9a-f]{8,17}$/, 'an EBS volume id')
      .optional(),
  })
  .strict()
  .refine((s) => s.freeBytes <= s.totalBytes, 'freeBytes at most totalBytes');

export const instanceReportSchema = z
  .object({
    port,
    dataDirectory: path,
    state: z.enum(['running', 'stopped']),
    /** Known even when stopped (pg_lsclusters knows the version of a stopped cluster). */
    majorVersion: z.number().int().min(9).max(40),
    /** The rest is read from a running instance. */
    systemIdentifier: z
      .string()
      .regex(/^\d{1,20}$/, 'digits (pg_control_system().system_identifier)')
      .optional(),
    inRecovery: z.boolean().optional(),
    timeline: z
      .number()
      .int()
      .min(1)
      .max(2 ** 31 - 1)
      .optional(),
    /** Primary: pg_current_wal_lsn(). */
    currentLsn: lsnSchema.nullable().optional(),
    /** Replica: pg_last_wal_receive_lsn() and pg_last_wal_replay_lsn(). */
    receivedLsn: lsnSchema.nullable().optional(),
    replayedLsn: lsnSchema.nullable().optional(),
    /** Replica: where it streams from (pg_stat_wal_receiver), null when not streaming. */
    upstream: z.object({ host, port }).strict().nullable().optional(),
    replicas: z.array(replicaSchema).max(256).default([]),
    /** Settings changed in the configuration that need a restart (pg_settings.pending_restart). */
    pendingRestart: z.array(z.string().max(100)).max(500).default([]),
    /** pg_conf_load_time(): when it last loaded its configuration (a reload, a start); absent from older agents. */
    confLoadedAt: z.iso.datetime({ offset: true }).optional(),
    /** server_version_num (150018: 15.18). */
    serverVersionNum: z.number().int().min(90000).max(999999).optional(),
    /** The bin directory its postmaster runs from (its executable's, as the host resolves it). */
    binDir: z
      .string()
      .max(400)
      .regex(/^\/[^\n\0]*$/, 'an absolute path')
      .optional(),
    startedAt: z.iso.datetime({ offset: true }).optional(),
    /** The filesystems of its data directory and of its WAL (pg_wal, wherever it links; absent where the agent may not look inside), as statfs says. */
    disk: z.object({ data: fsSpace, wal: fsSpace.optional() }).strict().optional(),
    /** The Patroni that runs it: its cluster's scope and its REST address. */
    patroni: z
      .object({
        // As the herd form takes it (letters, digits and . _ -, as in patroni.yml).
        scope: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, "Patroni's scope: letters, digits and . _ -"),
        restUrl: z
          .string()
          .max(300)
          .regex(
            /^https?:\/\/(?=[^:]{1,253}(:|$))[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?$/,
            'http(s)://host:port, a host name or address and a port 1-65535',
          ),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((i, ctx) => {
    if (i.state !== 'running') return;
    for (const k of ['systemIdentifier', 'inRecovery', 'timeline'] as const) {
      if (i[k] === undefined) ctx.addIssue({ code: 'custom', path: [k], message: 'required for a running instance' });
    }
  });

export const reportSchema = z
  .object({
    /** The report format; a later agent may send 2, and this server then says it does not know it. */
    format: z.literal(1),
    agentVersion: z.string().max(40),
    /** The host the report comes from. Never used to find the server (the token says which it is), but
     *  it must name that server: a token copied to another host is refused. */
    hostname: host,
    /** When the agent read the facts (the instances' last_observed_at, the load average's time). A
     *  time more than five minutes ahead of this server's clock is refused: it would make old facts look new. */
    observedAt: z.iso
      .datetime({ offset: true })
      .refine(
        (t) => Date.parse(t) <= Date.now() + 300_000,
        "is ahead of this server's clock by more than five minutes: check the host's clock",
      ),
    /** Seconds between reports (0: run once by a timer); the dashboard counts silence in intervals. */
    intervalSeconds: z.number().int().min(0).max(86_400).default(0),
    /** The host's load averages over 1, 5 and 15 minutes (os.loadavg()); absent from older agents. */
    loadAverage: z.array(z.number().min(0).max(1_000_000)).length(3).optional(),
    /** The host's memory in MiB and its cores (what a parameter group's formulas are computed from); absent from older agents. */
    memoryMb: z.number().int().min(1).max(1_000_000_000).optional(),
    cpus: z.number().int().min(1).max(100_000).optional(),
    instances: z.array(instanceReportSchema).max(MAX_INSTANCES, `at most ${MAX_INSTANCES} instances`),
    /** The Postgres builds installed on the host (absent from older agents: what is on record stays). */
    builds: z
      .array(
        z
          .object({
            binDir: z
              .string()
              .max(400)
              .regex(/^\/[^\n\0]*$/, 'an absolute path'),
            versionNum: z.number().int().min(90000).max(999999),
            versionText: z.string().max(200),
            extensions: z
              .record(z.string().regex(/^[A-Za-z0-9_.-]{1,63}$/, 'an extension name'), z.string().max(40))
              .refine((r) => Object.keys(r).length <= 1000, 'at most 1,000 extensions')
              .default({}),
          })
          .strict(),
      )
      .max(64)
      .optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    const seen = new Set<number>();
    r.instances.forEach((i, n) => {
      if (seen.has(i.port)) ctx.addIssue({ code: 'custom', path: ['instances', n, 'port'], message: `port ${i.port} is reported twice` });
      seen.add(i.port);
    });
  });

export type Report = z.infer<typeof reportSchema>;
export type InstanceReport = z.infer<typeof instanceReportSchema>;

export type ReadReport =
  { ok: true; report: Report } | { ok: false; status: 400 | 413 | 422; error: string; details: { path: string; message: string }[] | null };

/** The body of a report request: size, JSON, schema. Nothing is written for any of the refusals. */
export function readReport(text: string): ReadReport {
  if (Buffer.byteLength(text) > MAX_REPORT_BYTES)
    return { ok: false, status: 413, error: `a report is at most ${MAX_REPORT_BYTES} bytes`, details: null };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, status: 400, error: 'the report is not valid JSON', details: null };
  }
  const parsed = reportSchema.safeParse(raw);
  if (!parsed.success) {
    return {
      ok: false,
      status: 422,
      error: 'invalid report: nothing was written',
      details: parsed.error.issues.slice(0, 50).map((i) => ({ path: i.path.join('.') || '(report)', message: i.message })),
    };
  }
  return { ok: true, report: parsed.data };
}
