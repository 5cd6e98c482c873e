ALTER TABLE "backup_policies" ADD COLUMN "s3_connect_host" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "backup_policies" ADD COLUMN "s3_port" integer DEFAULT 443 NOT NULL;--> statement-breakpoint
ALTER TABLE "backup_policies" ADD COLUMN "s3_ca_file" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "backup_policies" ADD CONSTRAINT "backup_policies_s3_port_check" CHECK (s3_port BETWEEN 1 AND 65535);