CREATE TABLE "fleet_samples" (
	"at" timestamp with time zone NOT NULL,
	"environment_id" integer NOT NULL,
	"role" "instance_role" NOT NULL,
	"state" "instance_state" NOT NULL,
	"instances" integer NOT NULL,
	CONSTRAINT "fleet_samples_at_environment_id_role_state_pk" PRIMARY KEY("at","environment_id","role","state")
);
--> statement-breakpoint
CREATE TABLE "lag_samples" (
	"instance_id" integer NOT NULL,
	"herd_id" integer NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"lag_bytes" bigint,
	"lag_seconds" real,
	"role" "instance_role" NOT NULL,
	"state" "instance_state" NOT NULL,
	"coarse" boolean DEFAULT false NOT NULL,
	CONSTRAINT "lag_samples_instance_id_at_pk" PRIMARY KEY("instance_id","at")
);
--> statement-breakpoint
CREATE INDEX "fleet_samples_at_idx" ON "fleet_samples" USING btree ("at");--> statement-breakpoint
CREATE INDEX "lag_samples_herd_at_idx" ON "lag_samples" USING btree ("herd_id","at");--> statement-breakpoint
CREATE INDEX "lag_samples_at_idx" ON "lag_samples" USING btree ("at");