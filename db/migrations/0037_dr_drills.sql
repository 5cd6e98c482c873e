CREATE TABLE "dr_drills" (
	"id" serial PRIMARY KEY NOT NULL,
	"herd_id" integer,
	"operation_id" integer,
	"primary_label" text NOT NULL,
	"candidate_label" text NOT NULL,
	"candidate_site" text NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone DEFAULT now() NOT NULL,
	"first_write_ms" integer,
	"longest_gap_ms" integer,
	"acknowledged" integer NOT NULL,
	"lost" integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE "dr_drills" ADD CONSTRAINT "dr_drills_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dr_drills" ADD CONSTRAINT "dr_drills_operation_id_operations_id_fk" FOREIGN KEY ("operation_id") REFERENCES "public"."operations"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "dr_drills_herd_idx" ON "dr_drills" USING btree ("herd_id","id");