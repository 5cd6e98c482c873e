ALTER TABLE "restore_claims" ADD COLUMN "is_copy" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "restore_claims" ADD COLUMN "system_identifier" text;--> statement-breakpoint
ALTER TABLE "restore_claims" ADD COLUMN "port" integer;--> statement-breakpoint
ALTER TABLE "restore_claims" ADD COLUMN "removed_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "restore_claims_place_idx" ON "restore_claims" USING btree ("server_id","data_directory");--> statement-breakpoint
UPDATE "restore_claims" c SET "is_copy" = true FROM "operation_targets" t JOIN "operations" o ON o.id = t.operation_id
  WHERE t.id = c.target_id AND o.action IN ('restore', 'restore-drill');--> statement-breakpoint
UPDATE "restore_claims" SET "removed_at" = coalesce("settled_at", now()) WHERE "settled_how" LIKE 'removed%';
