ALTER TABLE "herds" ADD COLUMN "observe_due_at" timestamp with time zone DEFAULT '-infinity' NOT NULL;--> statement-breakpoint
ALTER TABLE "herds" ADD COLUMN "observed_by" text;--> statement-breakpoint
CREATE INDEX "herds_observe_due_idx" ON "herds" USING btree ("observe_due_at");--> statement-breakpoint
CREATE INDEX "instances_observed_idx" ON "instances" USING btree (coalesce("last_observed_at", "created_at"));