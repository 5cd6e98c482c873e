CREATE TYPE "public"."backup_repo_kind" AS ENUM('posix', 's3');--> statement-breakpoint
CREATE TYPE "public"."backup_tool" AS ENUM('pgbackrest');--> statement-breakpoint
CREATE TYPE "public"."backup_type" AS ENUM('full', 'diff', 'incr');--> statement-breakpoint
CREATE TABLE "backup_policies" (
	"id" serial PRIMARY KEY NOT NULL,
	"environment_id" integer NOT NULL,
	"herd_id" integer,
	"tool" "backup_tool" DEFAULT 'pgbackrest' NOT NULL,
	"repo_kind" "backup_repo_kind" DEFAULT 'posix' NOT NULL,
	"repo_server_id" integer,
	"repo_path" text NOT NULL,
	"s3_bucket" text DEFAULT '' NOT NULL,
	"s3_endpoint" text DEFAULT '' NOT NULL,
	"s3_region" text DEFAULT '' NOT NULL,
	"retention_full" integer DEFAULT 2 NOT NULL,
	"compress_type" text DEFAULT 'zst' NOT NULL,
	"encrypt" boolean DEFAULT true NOT NULL,
	"from_standby" boolean DEFAULT true NOT NULL,
	"archive_timeout_seconds" integer DEFAULT 60 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "backup_policies_retention_check" CHECK (retention_full BETWEEN 1 AND 100),
	CONSTRAINT "backup_policies_archive_timeout_check" CHECK (archive_timeout_seconds BETWEEN 10 AND 3600),
	CONSTRAINT "backup_policies_compress_check" CHECK (compress_type IN ('zst', 'lz4', 'gz', 'none')),
	CONSTRAINT "backup_policies_repo_check" CHECK ((repo_kind = 'posix' AND repo_server_id IS NOT NULL) OR (repo_kind = 's3' AND s3_bucket <> ''))
);
--> statement-breakpoint
CREATE TABLE "backups" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"herd_id" integer NOT NULL,
	"stanza" text NOT NULL,
	"label" text NOT NULL,
	"type" "backup_type" NOT NULL,
	"prior" text,
	"started_at" timestamp with time zone NOT NULL,
	"stopped_at" timestamp with time zone NOT NULL,
	"size_bytes" bigint NOT NULL,
	"repo_size_bytes" bigint NOT NULL,
	"lsn_start" text NOT NULL,
	"lsn_stop" text NOT NULL,
	"wal_start" text NOT NULL,
	"wal_stop" text NOT NULL,
	"operation_id" bigint,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL,
	"gone_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "herd_backup_setups" (
	"herd_id" integer PRIMARY KEY NOT NULL,
	"policy_id" integer,
	"stanza" text NOT NULL,
	"applied" jsonb NOT NULL,
	"applied_at" timestamp with time zone DEFAULT now() NOT NULL,
	"operation_id" bigint,
	"info_status" text DEFAULT '' NOT NULL,
	"info_read_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "restore_drills" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"herd_id" integer NOT NULL,
	"operation_id" bigint,
	"started_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone DEFAULT now() NOT NULL,
	"ok" boolean NOT NULL,
	"cause" text DEFAULT '' NOT NULL,
	"rto_ms" integer,
	"rpo_ms" integer,
	"restored_bytes" bigint,
	"restore_ms" integer
);
--> statement-breakpoint
ALTER TABLE "herds" ADD COLUMN "restored_from_herd_id" integer;--> statement-breakpoint
ALTER TABLE "herds" ADD COLUMN "restored_to" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "herds" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "archived_count" bigint;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "last_archived_wal" text;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "last_archived_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "archive_failed_count" bigint;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "last_archive_failed_wal" text;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "last_archive_failed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "archive_pending_since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "backup_policies" ADD CONSTRAINT "backup_policies_environment_id_environments_id_fk" FOREIGN KEY ("environment_id") REFERENCES "public"."environments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "backup_policies" ADD CONSTRAINT "backup_policies_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "backup_policies" ADD CONSTRAINT "backup_policies_repo_server_id_servers_id_fk" FOREIGN KEY ("repo_server_id") REFERENCES "public"."servers"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "backups" ADD CONSTRAINT "backups_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "backups" ADD CONSTRAINT "backups_operation_id_operations_id_fk" FOREIGN KEY ("operation_id") REFERENCES "public"."operations"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "herd_backup_setups" ADD CONSTRAINT "herd_backup_setups_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "herd_backup_setups" ADD CONSTRAINT "herd_backup_setups_policy_id_backup_policies_id_fk" FOREIGN KEY ("policy_id") REFERENCES "public"."backup_policies"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "herd_backup_setups" ADD CONSTRAINT "herd_backup_setups_operation_id_operations_id_fk" FOREIGN KEY ("operation_id") REFERENCES "public"."operations"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "restore_drills" ADD CONSTRAINT "restore_drills_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "restore_drills" ADD CONSTRAINT "restore_drills_operation_id_operations_id_fk" FOREIGN KEY ("operation_id") REFERENCES "public"."operations"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "backup_policies_environment_key" ON "backup_policies" USING btree ("environment_id") WHERE herd_id IS NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "backup_policies_herd_key" ON "backup_policies" USING btree ("herd_id") WHERE herd_id IS NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "backups_herd_label_key" ON "backups" USING btree ("herd_id","label");--> statement-breakpoint
CREATE INDEX "backups_herd_stopped_idx" ON "backups" USING btree ("herd_id","stopped_at");--> statement-breakpoint
CREATE INDEX "restore_drills_herd_idx" ON "restore_drills" USING btree ("herd_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "restore_drills_operation_key" ON "restore_drills" USING btree ("operation_id","herd_id");