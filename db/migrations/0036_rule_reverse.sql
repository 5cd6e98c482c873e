ALTER TABLE "rules" ADD COLUMN "reverse_of" integer;--> statement-breakpoint
ALTER TABLE "rules" ADD CONSTRAINT "rules_reverse_of_rules_id_fk" FOREIGN KEY ("reverse_of") REFERENCES "public"."rules"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "rules_reverse_of_key" ON "rules" USING btree ("reverse_of");