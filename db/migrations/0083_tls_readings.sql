CREATE TABLE "tls_readings" (
	"key" text PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"herd_id" integer NOT NULL,
	"instance_id" bigint,
	"endpoint" text NOT NULL,
	"not_after" timestamp with time zone,
	"subject" text,
	"error" text,
	"read_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "tls_readings" ADD CONSTRAINT "tls_readings_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tls_readings" ADD CONSTRAINT "tls_readings_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE cascade ON UPDATE no action;