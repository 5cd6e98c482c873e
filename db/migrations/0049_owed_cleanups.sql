CREATE TABLE "owed_cleanups" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"target_id" integer NOT NULL,
	"herd_id" integer NOT NULL,
	"pooler_id" integer,
	"kind" text NOT NULL,
	"says" text NOT NULL,
	"databases" text[] NOT NULL,
	"resume_token" text NOT NULL,
	"due_by" timestamp with time zone NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"claimed_until" timestamp with time zone,
	"last_error" text,
	"settled_at" timestamp with time zone,
	"settled_how" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "owed_cleanups" ADD CONSTRAINT "owed_cleanups_target_id_operation_targets_id_fk" FOREIGN KEY ("target_id") REFERENCES "public"."operation_targets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "owed_cleanups" ADD CONSTRAINT "owed_cleanups_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "owed_cleanups" ADD CONSTRAINT "owed_cleanups_pooler_id_poolers_id_fk" FOREIGN KEY ("pooler_id") REFERENCES "public"."poolers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "owed_cleanups_open_idx" ON "owed_cleanups" USING btree ("herd_id") WHERE settled_at IS NULL;--> statement-breakpoint
CREATE INDEX "owed_cleanups_target_idx" ON "owed_cleanups" USING btree ("target_id");