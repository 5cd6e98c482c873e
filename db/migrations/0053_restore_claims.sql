CREATE TABLE "restore_claims" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"target_id" bigint NOT NULL,
	"server_id" integer NOT NULL,
	"folder" text NOT NULL,
	"data_directory" text NOT NULL,
	"pg_version" smallint NOT NULL,
	"settled_at" timestamp with time zone,
	"settled_how" text,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "restore_claims" ADD CONSTRAINT "restore_claims_target_id_operation_targets_id_fk" FOREIGN KEY ("target_id") REFERENCES "public"."operation_targets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "restore_claims" ADD CONSTRAINT "restore_claims_server_id_servers_id_fk" FOREIGN KEY ("server_id") REFERENCES "public"."servers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "restore_claims_open_idx" ON "restore_claims" USING btree ("target_id") WHERE settled_at IS NULL;