ALTER TABLE "servers" ADD COLUMN "cloud_availability_zone" text;--> statement-breakpoint
ALTER TABLE "servers" ADD COLUMN "cloud_architecture" text;--> statement-breakpoint
ALTER TABLE "servers" ADD COLUMN "cloud_state" text;--> statement-breakpoint
ALTER TABLE "servers" ADD COLUMN "cloud_private_address" text;--> statement-breakpoint
ALTER TABLE "servers" ADD COLUMN "cloud_tags" jsonb;--> statement-breakpoint
ALTER TABLE "servers" ADD COLUMN "cloud_seen_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "servers" ADD COLUMN "cloud_gone_at" timestamp with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "servers_cloud_instance_key" ON "servers" USING btree ("cloud_provider","cloud_instance_id");