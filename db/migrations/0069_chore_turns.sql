CREATE TABLE "chore_turns" (
	"name" text PRIMARY KEY NOT NULL,
	"holder" text NOT NULL,
	"generation" bigint NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
