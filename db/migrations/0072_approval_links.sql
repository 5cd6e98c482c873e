CREATE TABLE "approval_link_uses" (
	"nonce" text PRIMARY KEY NOT NULL,
	"operation_id" bigint NOT NULL,
	"used_by" text NOT NULL,
	"used_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "signing_keys" (
	"name" text PRIMARY KEY NOT NULL,
	"key" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "rules" ADD COLUMN "approved_shape" text;--> statement-breakpoint
ALTER TABLE "rules" ADD COLUMN "approved_by" text;--> statement-breakpoint
ALTER TABLE "rules" ADD COLUMN "approved_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "rules" ADD COLUMN "approval_votes" jsonb;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "format" text DEFAULT 'pgherd' NOT NULL;--> statement-breakpoint
ALTER TABLE "approval_link_uses" ADD CONSTRAINT "approval_link_uses_operation_id_operations_id_fk" FOREIGN KEY ("operation_id") REFERENCES "public"."operations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhooks" ADD CONSTRAINT "webhooks_format_check" CHECK ("webhooks"."format" IN ('pgherd', 'slack'));