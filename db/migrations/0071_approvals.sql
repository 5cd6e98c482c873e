ALTER TYPE "public"."operation_status" ADD VALUE 'awaiting_approval';--> statement-breakpoint
ALTER TYPE "public"."operation_status" ADD VALUE 'denied';--> statement-breakpoint
ALTER TYPE "public"."operation_status" ADD VALUE 'expired';--> statement-breakpoint
CREATE TABLE "approval_policies" (
	"id" serial PRIMARY KEY NOT NULL,
	"environment_id" integer NOT NULL,
	"actions" text[] DEFAULT '{}'::text[] NOT NULL,
	"typed_confirmation" boolean DEFAULT false NOT NULL,
	"approvals_required" integer DEFAULT 1 NOT NULL,
	"approver_role" "role_name" DEFAULT 'operator' NOT NULL,
	"approver_group" text,
	"ttl_seconds" integer DEFAULT 3600 NOT NULL,
	"requester_may_approve" boolean DEFAULT false NOT NULL,
	"break_glass_forbidden" text[] DEFAULT '{}'::text[] NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "approval_policies_required_check" CHECK ("approval_policies"."approvals_required" BETWEEN 1 AND 5),
	CONSTRAINT "approval_policies_ttl_check" CHECK ("approval_policies"."ttl_seconds" BETWEEN 60 AND 604800),
	CONSTRAINT "approval_policies_role_check" CHECK ("approval_policies"."approver_role" <> 'viewer')
);
--> statement-breakpoint
CREATE TABLE "operation_approvals" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"operation_id" bigint NOT NULL,
	"user_id" integer,
	"username" text NOT NULL,
	"decision" text NOT NULL,
	"comment" text DEFAULT '' NOT NULL,
	"digest" text NOT NULL,
	"via" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "operation_approvals_decision_check" CHECK ("operation_approvals"."decision" IN ('approved', 'denied'))
);
--> statement-breakpoint
ALTER TABLE "operations" ADD COLUMN "approvals_required" integer;--> statement-breakpoint
ALTER TABLE "operations" ADD COLUMN "approval_expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "operations" ADD COLUMN "environment_ids" integer[];--> statement-breakpoint
ALTER TABLE "operations" ADD COLUMN "pending" jsonb;--> statement-breakpoint
ALTER TABLE "operations" ADD COLUMN "ended_reason" text;--> statement-breakpoint
ALTER TABLE "operations" ADD COLUMN "break_glass_reason" text;--> statement-breakpoint
ALTER TABLE "approval_policies" ADD CONSTRAINT "approval_policies_environment_id_environments_id_fk" FOREIGN KEY ("environment_id") REFERENCES "public"."environments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "operation_approvals" ADD CONSTRAINT "operation_approvals_operation_id_operations_id_fk" FOREIGN KEY ("operation_id") REFERENCES "public"."operations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "operation_approvals" ADD CONSTRAINT "operation_approvals_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "approval_policies_environment_idx" ON "approval_policies" USING btree ("environment_id");--> statement-breakpoint
CREATE UNIQUE INDEX "operation_approvals_person_key" ON "operation_approvals" USING btree ("operation_id",lower("username"));--> statement-breakpoint
CREATE INDEX "operations_awaiting_idx" ON "operations" USING btree ("approval_expires_at") WHERE approvals_required IS NOT NULL AND finished_at IS NULL;