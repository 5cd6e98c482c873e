ALTER TABLE "instances" ADD COLUMN "patroni_proposed_url" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "patroni_proposed_scope" text DEFAULT '' NOT NULL;