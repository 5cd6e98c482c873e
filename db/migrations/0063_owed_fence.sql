ALTER TABLE "owed_cleanups" ADD COLUMN "instance_id" bigint;--> statement-breakpoint
ALTER TABLE "owed_cleanups" ADD COLUMN "upgrade_id" integer;--> statement-breakpoint
ALTER TABLE "owed_cleanups" ADD CONSTRAINT "owed_cleanups_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "owed_cleanups" ADD CONSTRAINT "owed_cleanups_upgrade_id_major_upgrades_id_fk" FOREIGN KEY ("upgrade_id") REFERENCES "public"."major_upgrades"("id") ON DELETE cascade ON UPDATE no action;