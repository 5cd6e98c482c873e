CREATE TABLE "major_upgrades" (
	"id" serial PRIMARY KEY NOT NULL,
	"blue_herd_id" integer,
	"green_herd_id" integer,
	"to_version_num" integer NOT NULL,
	"databases" text[] NOT NULL,
	"status" text DEFAULT 'building' NOT NULL,
	"sequence_gap" integer DEFAULT 1000 NOT NULL,
	"operation_id" bigint,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"ready_at" timestamp with time zone,
	"cut_over_at" timestamp with time zone,
	"rolled_back_at" timestamp with time zone,
	"cleaned_at" timestamp with time zone,
	CONSTRAINT "major_upgrades_status_check" CHECK (status IN ('building', 'ready', 'cut-over', 'cleaned', 'failed'))
);
--> statement-breakpoint
ALTER TABLE "postgres_builds" ADD COLUMN "extensions" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "major_upgrades" ADD CONSTRAINT "major_upgrades_blue_herd_id_herds_id_fk" FOREIGN KEY ("blue_herd_id") REFERENCES "public"."herds"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "major_upgrades" ADD CONSTRAINT "major_upgrades_green_herd_id_herds_id_fk" FOREIGN KEY ("green_herd_id") REFERENCES "public"."herds"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "major_upgrades_open_key" ON "major_upgrades" USING btree ("blue_herd_id") WHERE status IN ('building', 'ready', 'cut-over');--> statement-breakpoint
CREATE INDEX "major_upgrades_green_idx" ON "major_upgrades" USING btree ("green_herd_id");