CREATE TABLE "auto_replace_decisions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"environment_id" integer NOT NULL,
	"herd_id" integer,
	"instance_id" bigint,
	"label" text NOT NULL,
	"verdict" text NOT NULL,
	"reason" text NOT NULL,
	"evidence" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"operation_id" bigint,
	"decided_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "auto_replace_policies" (
	"id" serial PRIMARY KEY NOT NULL,
	"environment_id" integer NOT NULL,
	"herd_id" integer,
	"enabled" boolean DEFAULT true NOT NULL,
	"after_seconds" integer DEFAULT 300 NOT NULL,
	"per_hour" integer DEFAULT 2 NOT NULL,
	"primaries" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "auto_replace_policies_after_check" CHECK (after_seconds BETWEEN 30 AND 86400),
	CONSTRAINT "auto_replace_policies_per_hour_check" CHECK (per_hour BETWEEN 1 AND 100)
);
--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "answered_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "auto_replace_decisions" ADD CONSTRAINT "auto_replace_decisions_environment_id_environments_id_fk" FOREIGN KEY ("environment_id") REFERENCES "public"."environments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "auto_replace_decisions" ADD CONSTRAINT "auto_replace_decisions_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "auto_replace_decisions" ADD CONSTRAINT "auto_replace_decisions_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "auto_replace_decisions" ADD CONSTRAINT "auto_replace_decisions_operation_id_operations_id_fk" FOREIGN KEY ("operation_id") REFERENCES "public"."operations"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "auto_replace_policies" ADD CONSTRAINT "auto_replace_policies_environment_id_environments_id_fk" FOREIGN KEY ("environment_id") REFERENCES "public"."environments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "auto_replace_policies" ADD CONSTRAINT "auto_replace_policies_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "auto_replace_decisions_environment_idx" ON "auto_replace_decisions" USING btree ("environment_id","decided_at");--> statement-breakpoint
CREATE INDEX "auto_replace_decisions_instance_idx" ON "auto_replace_decisions" USING btree ("instance_id","decided_at");--> statement-breakpoint
CREATE UNIQUE INDEX "auto_replace_policies_environment_key" ON "auto_replace_policies" USING btree ("environment_id") WHERE herd_id IS NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "auto_replace_policies_herd_key" ON "auto_replace_policies" USING btree ("herd_id") WHERE herd_id IS NOT NULL;--> statement-breakpoint
-- Every member running as of now answered when it was last observed: none counts as silent since it was made.
UPDATE "instances" SET "answered_at" = "last_observed_at" WHERE "state" = 'running';
