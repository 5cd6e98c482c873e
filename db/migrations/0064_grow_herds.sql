CREATE TABLE "retired_members" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"herd_id" integer,
	"instance_id" bigint NOT NULL,
	"label" text NOT NULL,
	"hostname" text NOT NULL,
	"port" integer NOT NULL,
	"data_directory" text NOT NULL,
	"cloud_instance_id" text,
	"host" text NOT NULL,
	"operation_id" bigint,
	"retired_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "spot_interruptions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"cloud_instance_id" text NOT NULL,
	"region" text DEFAULT '' NOT NULL,
	"availability_zone" text DEFAULT '' NOT NULL,
	"server_id" integer,
	"source" text NOT NULL,
	"instance_action" text NOT NULL,
	"due_at" timestamp with time zone,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"operation_id" bigint,
	"outcome" text DEFAULT '' NOT NULL
);
--> statement-breakpoint
ALTER TABLE "launched_instances" ADD COLUMN "kept_instance_id" bigint;--> statement-breakpoint
ALTER TABLE "launched_instances" ADD COLUMN "spot" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "retired_members" ADD CONSTRAINT "retired_members_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "retired_members" ADD CONSTRAINT "retired_members_operation_id_operations_id_fk" FOREIGN KEY ("operation_id") REFERENCES "public"."operations"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "spot_interruptions" ADD CONSTRAINT "spot_interruptions_server_id_servers_id_fk" FOREIGN KEY ("server_id") REFERENCES "public"."servers"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "spot_interruptions" ADD CONSTRAINT "spot_interruptions_operation_id_operations_id_fk" FOREIGN KEY ("operation_id") REFERENCES "public"."operations"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "retired_members_herd_idx" ON "retired_members" USING btree ("herd_id");--> statement-breakpoint
CREATE INDEX "spot_interruptions_zone_idx" ON "spot_interruptions" USING btree ("availability_zone","received_at");--> statement-breakpoint
CREATE UNIQUE INDEX "spot_interruptions_instance_key" ON "spot_interruptions" USING btree ("cloud_instance_id");