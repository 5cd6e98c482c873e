ALTER TABLE "herds" ADD COLUMN "patroni_leader" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "herds" ADD COLUMN "patroni_leader_instance_id" integer;--> statement-breakpoint
ALTER TABLE "herds" ADD COLUMN "patroni_paused" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "herds" ADD COLUMN "patroni_problem" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "herds" ADD COLUMN "patroni_read_at" timestamp with time zone;