import { migrateDatabase } from '@/db/migrate';
import { checkSettings } from '@/lib/settings/settings';

// Run where the console and the workers run, with their environment: a bad setting is said here first.
checkSettings('migrate');

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('migrate: DATABASE_URL is not set');
  process.exit(2);
}
migrateDatabase(url).then(
  () => console.log('migrate: database is up to date'),
  (err: unknown) => {
    console.error(`migrate: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
