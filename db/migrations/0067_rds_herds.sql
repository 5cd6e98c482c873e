ALTER TYPE "public"."control_driver" ADD VALUE 'rds';--> statement-breakpoint
ALTER TABLE "servers" ADD COLUMN "cloud_details" jsonb;