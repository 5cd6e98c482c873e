ALTER TABLE "users" ADD COLUMN "ldap_dn" text;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "groups" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
CREATE INDEX "audit_failed_sign_in_user_idx" ON "audit_entries" USING btree ("username","at") WHERE action = 'auth.sign_in_failed';--> statement-breakpoint
CREATE INDEX "audit_failed_sign_in_addr_idx" ON "audit_entries" USING btree ("remote_addr","at") WHERE action = 'auth.sign_in_failed';