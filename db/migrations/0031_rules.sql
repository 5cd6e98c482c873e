CREATE TABLE "blackouts" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"reason" text DEFAULT '' NOT NULL,
	"starts_at" timestamp with time zone NOT NULL,
	"ends_at" timestamp with time zone NOT NULL,
	"timezone" text DEFAULT 'UTC' NOT NULL,
	"environment_id" integer,
	"herd_id" integer,
	"created_by" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "blackouts_range_check" CHECK (ends_at > starts_at),
	CONSTRAINT "blackouts_one_scope_check" CHECK (environment_id IS NULL OR herd_id IS NULL)
);
--> statement-breakpoint
CREATE TABLE "rule_runs" (
	"id" serial PRIMARY KEY NOT NULL,
	"rule_id" integer NOT NULL,
	"kind" text NOT NULL,
	"fire_key" text NOT NULL,
	"due_at" timestamp with time zone NOT NULL,
	"fired_at" timestamp with time zone DEFAULT now() NOT NULL,
	"attempt" integer DEFAULT 0 NOT NULL,
	"retry_of" integer,
	"status" text DEFAULT 'firing' NOT NULL,
	"reason" text,
	"operation_id" integer,
	"targets" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"requested_by" text
);
--> statement-breakpoint
CREATE TABLE "rules" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"owner_id" integer,
	"owner_name" text NOT NULL,
	"action" text NOT NULL,
	"params" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"scope" jsonb NOT NULL,
	"schedule" jsonb NOT NULL,
	"conditions" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"logic" text DEFAULT 'all' NOT NULL,
	"retry" jsonb,
	"reverse" jsonb,
	"waves" jsonb,
	"grace_seconds" integer DEFAULT 300 NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"fires_from" timestamp with time zone DEFAULT now() NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "rules_grace_seconds_check" CHECK (grace_seconds BETWEEN 0 AND 604800)
);
--> statement-breakpoint
ALTER TABLE "operations" ADD COLUMN "rule_id" integer;--> statement-breakpoint
ALTER TABLE "blackouts" ADD CONSTRAINT "blackouts_environment_id_environments_id_fk" FOREIGN KEY ("environment_id") REFERENCES "public"."environments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "blackouts" ADD CONSTRAINT "blackouts_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rule_runs" ADD CONSTRAINT "rule_runs_rule_id_rules_id_fk" FOREIGN KEY ("rule_id") REFERENCES "public"."rules"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rule_runs" ADD CONSTRAINT "rule_runs_operation_id_operations_id_fk" FOREIGN KEY ("operation_id") REFERENCES "public"."operations"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rules" ADD CONSTRAINT "rules_owner_id_users_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "blackouts_ends_idx" ON "blackouts" USING btree ("ends_at");--> statement-breakpoint
CREATE UNIQUE INDEX "rule_runs_fire_key" ON "rule_runs" USING btree ("rule_id","fire_key");--> statement-breakpoint
CREATE INDEX "rule_runs_rule_idx" ON "rule_runs" USING btree ("rule_id","id");--> statement-breakpoint
CREATE INDEX "rule_runs_open_idx" ON "rule_runs" USING btree ("fired_at") WHERE status IN ('firing', 'deciding');--> statement-breakpoint
CREATE UNIQUE INDEX "rules_name_key" ON "rules" USING btree ("name");--> statement-breakpoint
ALTER TABLE "operations" ADD CONSTRAINT "operations_rule_id_rules_id_fk" FOREIGN KEY ("rule_id") REFERENCES "public"."rules"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "operations_rule_idx" ON "operations" USING btree ("rule_id","id") WHERE rule_id IS NOT NULL;