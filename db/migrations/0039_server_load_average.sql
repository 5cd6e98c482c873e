ALTER TABLE "servers" ADD COLUMN "load_average" real;--> statement-breakpoint
ALTER TABLE "servers" ADD COLUMN "load_average_at" timestamp with time zone;