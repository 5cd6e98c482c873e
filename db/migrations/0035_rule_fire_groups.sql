ALTER TABLE "rule_runs" ADD COLUMN "decided_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "rules" ADD COLUMN "last_due_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "rules" ADD COLUMN "fire_groups" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
CREATE INDEX "rules_fire_groups_idx" ON "rules" USING gin ("fire_groups");--> statement-breakpoint
-- Rules saved before: their groups from their stored schedules (as lib/schedules/cron.ts's fireGroupsOf
-- folds them), and the latest due time their runs recorded.
UPDATE "rules" SET
  "fire_groups" = COALESCE((SELECT array_agg(("schedule"->>'timezone') || '|' || regexp_replace(regexp_replace(c, '^\s+|\s+$', '', 'g'), '\s+', ' ', 'g'))
                             FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof("schedule"->'cron') = 'array' THEN "schedule"->'cron' ELSE '[]'::jsonb END) AS c), '{}'),
  "last_due_at" = (SELECT max("due_at") FROM "rule_runs" r WHERE r."rule_id" = "rules"."id" AND r."kind" IN ('schedule', 'catch-up'));
--> statement-breakpoint
-- Each fire moves its rule's last_due_at (not indexed): room on each page lets that be a HOT update,
-- which leaves the rules' indexes (the fire groups' GIN among them) alone.
ALTER TABLE "rules" SET (fillfactor = 50);
