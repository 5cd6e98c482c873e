ALTER TABLE "herds" ADD COLUMN "no_primary_since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "herds" ADD COLUMN "no_primary_detail" text DEFAULT '' NOT NULL;--> statement-breakpoint
CREATE INDEX "herds_no_primary_idx" ON "herds" USING btree ("no_primary_since") WHERE no_primary_since IS NOT NULL;