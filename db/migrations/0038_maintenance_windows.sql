CREATE TABLE "maintenance_windows" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"days" integer[] NOT NULL,
	"starts" text NOT NULL,
	"duration_minutes" integer NOT NULL,
	"timezone" text DEFAULT 'UTC' NOT NULL,
	"environment_id" integer,
	"herd_id" integer,
	"created_by" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "maintenance_windows_one_scope_check" CHECK (environment_id IS NULL OR herd_id IS NULL),
	CONSTRAINT "maintenance_windows_duration_check" CHECK (duration_minutes BETWEEN 1 AND 10080)
);
--> statement-breakpoint
ALTER TABLE "operations" ADD COLUMN "window_bound" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "rules" ADD COLUMN "inside_window" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "maintenance_windows" ADD CONSTRAINT "maintenance_windows_environment_id_environments_id_fk" FOREIGN KEY ("environment_id") REFERENCES "public"."environments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "maintenance_windows" ADD CONSTRAINT "maintenance_windows_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE cascade ON UPDATE no action;