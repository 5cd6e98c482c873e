ALTER TABLE "rule_runs" ADD COLUMN "rule_version" integer;--> statement-breakpoint
ALTER TABLE "rules" ADD COLUMN "confirmed_environments" integer[] DEFAULT '{}'::int[] NOT NULL;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "keeper_id" integer;--> statement-breakpoint
ALTER TABLE "webhooks" ADD CONSTRAINT "webhooks_keeper_id_users_id_fk" FOREIGN KEY ("keeper_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
UPDATE "webhooks" w SET "keeper_id" = r."owner_id" FROM "rules" r WHERE r."id" = w."rule_id";