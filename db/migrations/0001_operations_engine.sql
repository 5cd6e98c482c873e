ALTER TYPE "public"."operation_status" ADD VALUE 'partial';--> statement-breakpoint
CREATE TABLE "herd_leases" (
	"herd_id" integer PRIMARY KEY NOT NULL,
	"target_id" integer NOT NULL,
	"holder" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "operations" ADD COLUMN "idempotency_key" text;--> statement-breakpoint
ALTER TABLE "operations" ADD COLUMN "cancel_requested" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "herd_leases" ADD CONSTRAINT "herd_leases_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "herd_leases" ADD CONSTRAINT "herd_leases_target_id_operation_targets_id_fk" FOREIGN KEY ("target_id") REFERENCES "public"."operation_targets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "operations_idempotency_key" ON "operations" USING btree ("idempotency_key");