CREATE TABLE "discovery_runs" (
	"id" serial PRIMARY KEY NOT NULL,
	"requested_by" text,
	"requested_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"summary" jsonb,
	"error" text
);
--> statement-breakpoint
CREATE INDEX "discovery_runs_pending_idx" ON "discovery_runs" USING btree ("id") WHERE finished_at IS NULL;