CREATE TYPE "public"."hook_host" AS ENUM('worker', 'database');--> statement-breakpoint
ALTER TABLE "herds" ADD COLUMN "resize_pre_hook" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "herds" ADD COLUMN "resize_post_hook" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "herds" ADD COLUMN "hooks_run_on" "hook_host" DEFAULT 'database' NOT NULL;--> statement-breakpoint
ALTER TABLE "herds" ADD COLUMN "hook_timeout_seconds" integer DEFAULT 300 NOT NULL;--> statement-breakpoint
ALTER TABLE "herds" ADD CONSTRAINT "herds_hook_timeout_check" CHECK ("hook_timeout_seconds" BETWEEN 1 AND 3600);
