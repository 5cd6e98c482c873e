ALTER TABLE "restore_claims" ADD COLUMN "kept_herd_id" integer;--> statement-breakpoint
UPDATE "restore_claims" SET "kept_herd_id" = substring("settled_how" from '^kept as herd ([0-9]+)$')::integer WHERE "settled_how" ~ '^kept as herd [0-9]+$';
