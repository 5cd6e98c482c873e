CREATE TABLE "agent_conflicts" (
	"id" serial PRIMARY KEY NOT NULL,
	"server_id" integer NOT NULL,
	"port" integer NOT NULL,
	"system_identifier" text NOT NULL,
	"herd_id" integer NOT NULL,
	"first_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "agent_conflicts" ADD CONSTRAINT "agent_conflicts_server_id_servers_id_fk" FOREIGN KEY ("server_id") REFERENCES "public"."servers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "agent_conflicts" ADD CONSTRAINT "agent_conflicts_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "agent_conflicts_key" ON "agent_conflicts" USING btree ("server_id","port","system_identifier");--> statement-breakpoint
CREATE INDEX "agent_conflicts_herd_idx" ON "agent_conflicts" USING btree ("herd_id");