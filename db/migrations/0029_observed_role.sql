ALTER TABLE "instances" ADD COLUMN "observed_role" "instance_role";--> statement-breakpoint
-- What was observed so far is the role as it stands where an observation wrote it last.
UPDATE "instances" SET "observed_role" = "role" WHERE "last_observed_at" IS NOT NULL AND "role" <> 'unknown';
