DROP INDEX "operations_idempotency_key";--> statement-breakpoint
CREATE UNIQUE INDEX "operations_user_idempotency_key" ON "operations" USING btree ("requested_by_name","idempotency_key");