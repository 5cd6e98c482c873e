CREATE TABLE "postgres_builds" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"server_id" integer NOT NULL,
	"bin_dir" text NOT NULL,
	"version_num" integer NOT NULL,
	"version_text" text NOT NULL,
	"reported_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "postgres_builds_bin_dir_check" CHECK (bin_dir ~ '^/[^\n]*$')
);
--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "server_version_num" integer;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "bin_dir" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "postgres_builds" ADD CONSTRAINT "postgres_builds_server_id_servers_id_fk" FOREIGN KEY ("server_id") REFERENCES "public"."servers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "postgres_builds_server_dir_key" ON "postgres_builds" USING btree ("server_id","bin_dir");--> statement-breakpoint
CREATE INDEX "postgres_builds_version_idx" ON "postgres_builds" USING btree ("version_num");--> statement-breakpoint
ALTER TABLE "instances" ADD CONSTRAINT "instances_bin_dir_check" CHECK (bin_dir = '' OR bin_dir ~ '^/[^\n]*$');