CREATE TABLE "instance_doors" (
	"instance_id" bigint NOT NULL,
	"datname" text NOT NULL,
	"earlier_limit" integer NOT NULL,
	"closed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "instance_doors_instance_id_datname_pk" PRIMARY KEY("instance_id","datname")
);
--> statement-breakpoint
ALTER TABLE "instance_doors" ADD CONSTRAINT "instance_doors_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE cascade ON UPDATE no action;