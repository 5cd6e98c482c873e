-- Ids made over and over (instances, which every agent report used to take a value for, the engine's
-- operations, targets, steps and waves, rule runs, DR drills, held agent conflicts) become bigint, with
-- every column that holds one. One ALTER TABLE a table, so that each is rewritten once. A column's new
-- type leaves its sequence an integer one (it would stop at 2^31 - 1 all the same): each sequence is
-- made bigint too, which raises its maximum to 2^63 - 1 and keeps its last value.
ALTER TABLE "instances" ALTER COLUMN "id" SET DATA TYPE bigint, ALTER COLUMN "upstream_instance_id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER SEQUENCE "instances_id_seq" AS bigint;--> statement-breakpoint
ALTER TABLE "herds" ALTER COLUMN "patroni_leader_instance_id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER TABLE "dns_records" ALTER COLUMN "match_instance_id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER TABLE "lag_samples" ALTER COLUMN "instance_id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER TABLE "agent_conflicts" ALTER COLUMN "id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER SEQUENCE "agent_conflicts_id_seq" AS bigint;--> statement-breakpoint
ALTER TABLE "operations" ALTER COLUMN "id" SET DATA TYPE bigint, ALTER COLUMN "gate_excused" SET DATA TYPE bigint[], ALTER COLUMN "gate_excused" SET DEFAULT '{}'::bigint[];--> statement-breakpoint
ALTER SEQUENCE "operations_id_seq" AS bigint;--> statement-breakpoint
ALTER TABLE "operation_targets" ALTER COLUMN "id" SET DATA TYPE bigint, ALTER COLUMN "operation_id" SET DATA TYPE bigint, ALTER COLUMN "instance_id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER SEQUENCE "operation_targets_id_seq" AS bigint;--> statement-breakpoint
ALTER TABLE "operation_steps" ALTER COLUMN "id" SET DATA TYPE bigint, ALTER COLUMN "target_id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER SEQUENCE "operation_steps_id_seq" AS bigint;--> statement-breakpoint
ALTER TABLE "operation_waves" ALTER COLUMN "id" SET DATA TYPE bigint, ALTER COLUMN "operation_id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER SEQUENCE "operation_waves_id_seq" AS bigint;--> statement-breakpoint
ALTER TABLE "herd_leases" ALTER COLUMN "target_id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER TABLE "owed_cleanups" ALTER COLUMN "target_id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER TABLE "dr_drills" ALTER COLUMN "id" SET DATA TYPE bigint, ALTER COLUMN "operation_id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER SEQUENCE "dr_drills_id_seq" AS bigint;--> statement-breakpoint
ALTER TABLE "rule_runs" ALTER COLUMN "id" SET DATA TYPE bigint, ALTER COLUMN "retry_of" SET DATA TYPE bigint, ALTER COLUMN "operation_id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER SEQUENCE "rule_runs_id_seq" AS bigint;--> statement-breakpoint
ALTER TABLE "notification_events" ALTER COLUMN "operation_id" SET DATA TYPE bigint, ALTER COLUMN "rule_run_id" SET DATA TYPE bigint;
