ALTER TABLE "restore_claims" DROP CONSTRAINT "restore_claims_server_id_servers_id_fk";
--> statement-breakpoint
ALTER TABLE "restore_claims" ALTER COLUMN "server_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "restore_claims" ADD CONSTRAINT "restore_claims_server_id_servers_id_fk" FOREIGN KEY ("server_id") REFERENCES "public"."servers"("id") ON DELETE set null ON UPDATE no action;