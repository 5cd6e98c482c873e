CREATE TYPE "public"."automation_mode" AS ENUM('enabled', 'maintenance');--> statement-breakpoint
CREATE TYPE "public"."binding_subject" AS ENUM('user', 'group');--> statement-breakpoint
CREATE TYPE "public"."control_driver" AS ENUM('pg_ctl', 'pg_ctlcluster', 'systemd', 'patroni');--> statement-breakpoint
CREATE TYPE "public"."dns_match" AS ENUM('instance', 'role');--> statement-breakpoint
CREATE TYPE "public"."dns_provider" AS ENUM('rfc2136', 'route53');--> statement-breakpoint
CREATE TYPE "public"."dns_record_type" AS ENUM('CNAME', 'A');--> statement-breakpoint
CREATE TYPE "public"."instance_role" AS ENUM('primary', 'replica', 'unknown');--> statement-breakpoint
CREATE TYPE "public"."instance_state" AS ENUM('running', 'stopped', 'unreachable', 'fenced', 'needs_rebuild');--> statement-breakpoint
CREATE TYPE "public"."operation_status" AS ENUM('planned', 'queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted');--> statement-breakpoint
CREATE TYPE "public"."role_name" AS ENUM('viewer', 'operator', 'admin');--> statement-breakpoint
CREATE TYPE "public"."step_status" AS ENUM('running', 'succeeded', 'failed', 'skipped');--> statement-breakpoint
CREATE TYPE "public"."user_source" AS ENUM('local', 'ldap');--> statement-breakpoint
CREATE TABLE "audit_entries" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"user_id" integer,
	"username" text NOT NULL,
	"remote_addr" text DEFAULT '' NOT NULL,
	"action" text NOT NULL,
	"object_type" text NOT NULL,
	"object_id" text DEFAULT '' NOT NULL,
	"object_label" text DEFAULT '' NOT NULL,
	"environment_id" integer,
	"changes" jsonb DEFAULT '{}'::jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "dns_records" (
	"id" serial PRIMARY KEY NOT NULL,
	"herd_id" integer NOT NULL,
	"name" text NOT NULL,
	"type" "dns_record_type" DEFAULT 'CNAME' NOT NULL,
	"zone" text NOT NULL,
	"provider" "dns_provider" DEFAULT 'rfc2136' NOT NULL,
	"ttl" integer DEFAULT 60 NOT NULL,
	"match" "dns_match" DEFAULT 'role' NOT NULL,
	"match_role" "instance_role" DEFAULT 'primary',
	"match_instance_id" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "environments" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "herds" (
	"id" serial PRIMARY KEY NOT NULL,
	"environment_id" integer NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"default_port" integer DEFAULT 5432 NOT NULL,
	"default_data_directory" text DEFAULT '' NOT NULL,
	"pg_version" smallint DEFAULT 15 NOT NULL,
	"control_driver" "control_driver" DEFAULT 'pg_ctl' NOT NULL,
	"dns_name" text DEFAULT '' NOT NULL,
	"automation" "automation_mode" DEFAULT 'enabled' NOT NULL,
	"system_identifier" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "instances" (
	"id" serial PRIMARY KEY NOT NULL,
	"herd_id" integer NOT NULL,
	"server_id" integer NOT NULL,
	"port" integer NOT NULL,
	"data_directory" text DEFAULT '' NOT NULL,
	"pg_version" smallint DEFAULT 15 NOT NULL,
	"role" "instance_role" DEFAULT 'unknown' NOT NULL,
	"upstream_instance_id" integer,
	"state" "instance_state" DEFAULT 'stopped' NOT NULL,
	"timeline" integer,
	"lsn" bigint,
	"lag_bytes" bigint,
	"lag_seconds" real,
	"pending_restart" boolean DEFAULT false NOT NULL,
	"last_observed_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "operation_steps" (
	"id" serial PRIMARY KEY NOT NULL,
	"target_id" integer NOT NULL,
	"seq" integer NOT NULL,
	"name" text NOT NULL,
	"command" text DEFAULT '' NOT NULL,
	"status" "step_status" DEFAULT 'running' NOT NULL,
	"exit_code" integer,
	"stdout_tail" text DEFAULT '' NOT NULL,
	"stderr_tail" text DEFAULT '' NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "operation_targets" (
	"id" serial PRIMARY KEY NOT NULL,
	"operation_id" integer NOT NULL,
	"instance_id" integer,
	"herd_id" integer,
	"label" text NOT NULL,
	"status" "operation_status" DEFAULT 'queued' NOT NULL,
	"error" text,
	"attempts" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "operations" (
	"id" serial PRIMARY KEY NOT NULL,
	"action" text NOT NULL,
	"params" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"status" "operation_status" DEFAULT 'planned' NOT NULL,
	"plan_digest" text NOT NULL,
	"requested_by" integer,
	"requested_by_name" text NOT NULL,
	"confirmation" text DEFAULT '' NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "role_bindings" (
	"id" serial PRIMARY KEY NOT NULL,
	"role" "role_name" NOT NULL,
	"subject_type" "binding_subject" NOT NULL,
	"subject" text NOT NULL,
	"environment_id" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "role_bindings_key" UNIQUE NULLS NOT DISTINCT("subject_type","subject","role","environment_id")
);
--> statement-breakpoint
CREATE TABLE "servers" (
	"id" serial PRIMARY KEY NOT NULL,
	"hostname" text NOT NULL,
	"environment_id" integer NOT NULL,
	"address" text DEFAULT '' NOT NULL,
	"site" text DEFAULT '' NOT NULL,
	"ssh_port" integer DEFAULT 22 NOT NULL,
	"ssh_user" text DEFAULT 'postgres' NOT NULL,
	"ssh_host_key_fingerprint" text,
	"cloud_provider" text,
	"cloud_region" text,
	"cloud_instance_id" text,
	"cloud_instance_type" text,
	"agent_token_hash" text,
	"last_seen_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "users" (
	"id" serial PRIMARY KEY NOT NULL,
	"username" text NOT NULL,
	"display_name" text DEFAULT '' NOT NULL,
	"email" text DEFAULT '' NOT NULL,
	"source" "user_source" DEFAULT 'local' NOT NULL,
	"password_hash" text,
	"is_active" boolean DEFAULT true NOT NULL,
	"is_superuser" boolean DEFAULT false NOT NULL,
	"last_login_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "dns_records" ADD CONSTRAINT "dns_records_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dns_records" ADD CONSTRAINT "dns_records_match_instance_id_instances_id_fk" FOREIGN KEY ("match_instance_id") REFERENCES "public"."instances"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "herds" ADD CONSTRAINT "herds_environment_id_environments_id_fk" FOREIGN KEY ("environment_id") REFERENCES "public"."environments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "instances" ADD CONSTRAINT "instances_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "instances" ADD CONSTRAINT "instances_server_id_servers_id_fk" FOREIGN KEY ("server_id") REFERENCES "public"."servers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "instances" ADD CONSTRAINT "instances_upstream_instance_id_instances_id_fk" FOREIGN KEY ("upstream_instance_id") REFERENCES "public"."instances"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "operation_steps" ADD CONSTRAINT "operation_steps_target_id_operation_targets_id_fk" FOREIGN KEY ("target_id") REFERENCES "public"."operation_targets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "operation_targets" ADD CONSTRAINT "operation_targets_operation_id_operations_id_fk" FOREIGN KEY ("operation_id") REFERENCES "public"."operations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "operation_targets" ADD CONSTRAINT "operation_targets_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "operation_targets" ADD CONSTRAINT "operation_targets_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "operations" ADD CONSTRAINT "operations_requested_by_users_id_fk" FOREIGN KEY ("requested_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "role_bindings" ADD CONSTRAINT "role_bindings_environment_id_environments_id_fk" FOREIGN KEY ("environment_id") REFERENCES "public"."environments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "servers" ADD CONSTRAINT "servers_environment_id_environments_id_fk" FOREIGN KEY ("environment_id") REFERENCES "public"."environments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "audit_object_idx" ON "audit_entries" USING btree ("object_type","object_id","at");--> statement-breakpoint
CREATE INDEX "audit_at_idx" ON "audit_entries" USING btree ("at");--> statement-breakpoint
CREATE INDEX "audit_user_idx" ON "audit_entries" USING btree ("username");--> statement-breakpoint
CREATE UNIQUE INDEX "dns_records_name_type_key" ON "dns_records" USING btree ("name","type");--> statement-breakpoint
CREATE INDEX "dns_records_herd_idx" ON "dns_records" USING btree ("herd_id");--> statement-breakpoint
CREATE UNIQUE INDEX "environments_name_key" ON "environments" USING btree ("name");--> statement-breakpoint
CREATE UNIQUE INDEX "herds_environment_name_key" ON "herds" USING btree ("environment_id","name");--> statement-breakpoint
CREATE UNIQUE INDEX "herds_system_identifier_key" ON "herds" USING btree ("system_identifier");--> statement-breakpoint
CREATE INDEX "herds_name_idx" ON "herds" USING btree ("name");--> statement-breakpoint
CREATE UNIQUE INDEX "instances_server_port_key" ON "instances" USING btree ("server_id","port");--> statement-breakpoint
CREATE INDEX "instances_herd_idx" ON "instances" USING btree ("herd_id");--> statement-breakpoint
CREATE INDEX "instances_role_idx" ON "instances" USING btree ("role");--> statement-breakpoint
CREATE INDEX "instances_state_idx" ON "instances" USING btree ("state");--> statement-breakpoint
CREATE INDEX "instances_version_idx" ON "instances" USING btree ("pg_version");--> statement-breakpoint
CREATE INDEX "instances_lag_idx" ON "instances" USING btree ("lag_bytes");--> statement-breakpoint
CREATE INDEX "instances_upstream_idx" ON "instances" USING btree ("upstream_instance_id");--> statement-breakpoint
CREATE UNIQUE INDEX "operation_steps_target_seq_key" ON "operation_steps" USING btree ("target_id","seq");--> statement-breakpoint
CREATE INDEX "operation_targets_operation_idx" ON "operation_targets" USING btree ("operation_id");--> statement-breakpoint
CREATE INDEX "operation_targets_instance_idx" ON "operation_targets" USING btree ("instance_id");--> statement-breakpoint
CREATE INDEX "operation_targets_herd_idx" ON "operation_targets" USING btree ("herd_id");--> statement-breakpoint
CREATE INDEX "operation_targets_status_idx" ON "operation_targets" USING btree ("status");--> statement-breakpoint
CREATE INDEX "operations_status_idx" ON "operations" USING btree ("status");--> statement-breakpoint
CREATE INDEX "operations_created_idx" ON "operations" USING btree ("created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "servers_hostname_key" ON "servers" USING btree ("hostname");--> statement-breakpoint
CREATE INDEX "servers_environment_idx" ON "servers" USING btree ("environment_id");--> statement-breakpoint
CREATE INDEX "servers_site_idx" ON "servers" USING btree ("site");--> statement-breakpoint
CREATE UNIQUE INDEX "users_username_key" ON "users" USING btree ("username");