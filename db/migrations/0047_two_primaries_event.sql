ALTER TABLE "notification_events" ADD COLUMN "herd_id" integer;--> statement-breakpoint
ALTER TABLE "notification_events" ADD COLUMN "detail" text;