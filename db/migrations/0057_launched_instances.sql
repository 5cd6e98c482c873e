CREATE TABLE "launched_instances" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"target_id" bigint NOT NULL,
	"environment_id" integer NOT NULL,
	"region" text NOT NULL,
	"client_token" text NOT NULL,
	"instance_type" text NOT NULL,
	"instance_id" text,
	"server_id" integer,
	"kept_herd_id" integer,
	"terminated_at" timestamp with time zone,
	"settled_how" text,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "launched_instances_client_token_unique" UNIQUE("client_token")
);
--> statement-breakpoint
ALTER TABLE "launched_instances" ADD CONSTRAINT "launched_instances_target_id_operation_targets_id_fk" FOREIGN KEY ("target_id") REFERENCES "public"."operation_targets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "launched_instances" ADD CONSTRAINT "launched_instances_environment_id_environments_id_fk" FOREIGN KEY ("environment_id") REFERENCES "public"."environments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "launched_instances" ADD CONSTRAINT "launched_instances_server_id_servers_id_fk" FOREIGN KEY ("server_id") REFERENCES "public"."servers"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "launched_instances_open_idx" ON "launched_instances" USING btree ("target_id") WHERE terminated_at IS NULL;