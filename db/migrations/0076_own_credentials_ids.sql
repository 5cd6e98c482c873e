ALTER TABLE "own_credential_rotations" DROP CONSTRAINT "own_credential_rotations_operation_id_herd_id_pk";--> statement-breakpoint
ALTER TABLE "own_credential_stages" DROP CONSTRAINT "own_credential_stages_operation_id_environment_pk";--> statement-breakpoint
ALTER TABLE "own_credential_rotations" ADD COLUMN "id" bigserial PRIMARY KEY NOT NULL;--> statement-breakpoint
ALTER TABLE "own_credential_stages" ADD COLUMN "id" bigserial PRIMARY KEY NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "own_credential_rotations_key" ON "own_credential_rotations" USING btree ("operation_id","herd_id");--> statement-breakpoint
CREATE UNIQUE INDEX "own_credential_stages_key" ON "own_credential_stages" USING btree ("operation_id","environment");