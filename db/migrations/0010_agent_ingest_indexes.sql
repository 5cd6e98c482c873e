CREATE UNIQUE INDEX "servers_agent_token_hash_key" ON "servers" USING btree ("agent_token_hash");--> statement-breakpoint
CREATE INDEX "servers_address_idx" ON "servers" USING btree ("address");