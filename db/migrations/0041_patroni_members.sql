ALTER TABLE "herds" ADD COLUMN "patroni_scope" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "patroni_url" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "instances" ADD CONSTRAINT "instances_patroni_url_check" CHECK (patroni_url = '' OR patroni_url ~ '^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$');