ALTER TABLE "operation_targets" ADD COLUMN "refusal" text;--> statement-breakpoint
-- Targets refused before refusals had codes were told apart by their error's words.
UPDATE "operation_targets" SET "refusal" = 'unclassified' WHERE "error" LIKE 'refused:%' OR "error" LIKE 'refused at execution:%';
