CREATE TABLE "own_credential_rotations" (
	"operation_id" bigint NOT NULL,
	"herd_id" integer NOT NULL,
	"environment" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "own_credential_rotations_operation_id_herd_id_pk" PRIMARY KEY("operation_id","herd_id")
);
--> statement-breakpoint
CREATE TABLE "own_credential_stages" (
	"operation_id" bigint NOT NULL,
	"environment" text NOT NULL,
	"salt" text,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "own_credential_stages_operation_id_environment_pk" PRIMARY KEY("operation_id","environment")
);
--> statement-breakpoint
ALTER TABLE "own_credential_rotations" ADD CONSTRAINT "own_credential_rotations_operation_id_operations_id_fk" FOREIGN KEY ("operation_id") REFERENCES "public"."operations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "own_credential_stages" ADD CONSTRAINT "own_credential_stages_operation_id_operations_id_fk" FOREIGN KEY ("operation_id") REFERENCES "public"."operations"("id") ON DELETE cascade ON UPDATE no action;