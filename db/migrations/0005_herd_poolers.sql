CREATE TABLE "poolers" (
	"id" serial PRIMARY KEY NOT NULL,
	"herd_id" integer NOT NULL,
	"server_id" integer NOT NULL,
	"port" integer DEFAULT 6432 NOT NULL,
	"admin_user" text DEFAULT 'pgbouncer' NOT NULL,
	"config_file" text DEFAULT '/etc/pgbouncer/pgbouncer.ini' NOT NULL,
	"databases" text[] NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "dns_records" ADD COLUMN "last_answer" text[];--> statement-breakpoint
ALTER TABLE "dns_records" ADD COLUMN "drifted" boolean;--> statement-breakpoint
ALTER TABLE "dns_records" ADD COLUMN "last_checked_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "operation_targets" ADD COLUMN "outcome" text;--> statement-breakpoint
ALTER TABLE "poolers" ADD CONSTRAINT "poolers_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "poolers" ADD CONSTRAINT "poolers_server_id_servers_id_fk" FOREIGN KEY ("server_id") REFERENCES "public"."servers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "poolers_server_port_key" ON "poolers" USING btree ("server_id","port");--> statement-breakpoint
CREATE INDEX "poolers_herd_idx" ON "poolers" USING btree ("herd_id");