CREATE TABLE "risk_readings" (
	"instance_id" bigint PRIMARY KEY NOT NULL,
	"reading" jsonb NOT NULL,
	"read_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "risks" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"key" text NOT NULL,
	"environment_id" integer NOT NULL,
	"herd_id" integer,
	"instance_id" bigint,
	"kind" text NOT NULL,
	"subject" text DEFAULT '' NOT NULL,
	"severity" text NOT NULL,
	"measure" double precision NOT NULL,
	"unit" text DEFAULT '' NOT NULL,
	"detail" text DEFAULT '' NOT NULL,
	"facts" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"since" timestamp with time zone DEFAULT now() NOT NULL,
	"seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"samples" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"ack_by" text,
	"ack_reason" text,
	"ack_until" timestamp with time zone,
	"ack_measure" double precision,
	"ack_step" double precision,
	"ack_severity" text,
	"counted" boolean DEFAULT true NOT NULL,
	CONSTRAINT "risks_severity_check" CHECK ("risks"."severity" IN ('warning', 'critical'))
);
--> statement-breakpoint
ALTER TABLE "environments" ADD COLUMN "risk_thresholds" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "risk_readings" ADD CONSTRAINT "risk_readings_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "risks" ADD CONSTRAINT "risks_environment_id_environments_id_fk" FOREIGN KEY ("environment_id") REFERENCES "public"."environments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "risks" ADD CONSTRAINT "risks_herd_id_herds_id_fk" FOREIGN KEY ("herd_id") REFERENCES "public"."herds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "risks" ADD CONSTRAINT "risks_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "risks_key" ON "risks" USING btree ("key");--> statement-breakpoint
CREATE INDEX "risks_environment_idx" ON "risks" USING btree ("environment_id","severity");--> statement-breakpoint
CREATE INDEX "risks_herd_idx" ON "risks" USING btree ("herd_id");