CREATE TABLE "disk_readings" (
	"instance_id" bigint PRIMARY KEY NOT NULL,
	"data_free" bigint NOT NULL,
	"data_total" bigint NOT NULL,
	"wal_free" bigint,
	"wal_total" bigint,
	"read_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "disk_samples" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"instance_id" bigint NOT NULL,
	"hour" timestamp with time zone NOT NULL,
	"data_used" bigint NOT NULL,
	"wal_used" bigint
);
--> statement-breakpoint
ALTER TABLE "disk_readings" ADD CONSTRAINT "disk_readings_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "disk_samples_key" ON "disk_samples" USING btree ("instance_id","hour");--> statement-breakpoint
CREATE INDEX "disk_samples_hour_idx" ON "disk_samples" USING btree ("hour");