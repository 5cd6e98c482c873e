CREATE TABLE "object_readings" (
	"instance_id" bigint PRIMARY KEY NOT NULL,
	"reading" jsonb NOT NULL,
	"fingerprint" text,
	"conf_loaded_at" timestamp with time zone,
	"read_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "object_set_versions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"set_id" integer NOT NULL,
	"version" integer NOT NULL,
	"name" text NOT NULL,
	"declaration" text NOT NULL,
	"author" text NOT NULL,
	"note" text DEFAULT '' NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "object_sets" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"declaration" text DEFAULT '' NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "environments" ADD COLUMN "object_set_id" integer;--> statement-breakpoint
ALTER TABLE "herds" ADD COLUMN "object_set_id" integer;--> statement-breakpoint
ALTER TABLE "herds" ADD COLUMN "object_overrides" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "objects_fingerprint" text;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "objects_drift" integer;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "objects_drift_since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "objects_judged_key" text;--> statement-breakpoint
ALTER TABLE "object_readings" ADD CONSTRAINT "object_readings_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "object_set_versions_key" ON "object_set_versions" USING btree ("set_id","version");--> statement-breakpoint
CREATE UNIQUE INDEX "object_sets_name_key" ON "object_sets" USING btree ("name");--> statement-breakpoint
ALTER TABLE "environments" ADD CONSTRAINT "environments_object_set_id_object_sets_id_fk" FOREIGN KEY ("object_set_id") REFERENCES "public"."object_sets"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "herds" ADD CONSTRAINT "herds_object_set_id_object_sets_id_fk" FOREIGN KEY ("object_set_id") REFERENCES "public"."object_sets"("id") ON DELETE restrict ON UPDATE no action;