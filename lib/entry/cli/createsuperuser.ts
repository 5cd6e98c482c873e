// npm run createsuperuser -- --username NAME      (asks for the password on the terminal)
// npm run createsuperuser -- --from-env            (PGHERD_ADMIN_USERNAME / PGHERD_ADMIN_PASSWORD,
//                                                   for containers; does nothing when they are unset)
import { createInterface } from 'node:readline/promises';
import { z } from 'zod';
import { createDb } from '@/db/client';
import { ensureAdmin } from '@/lib/features/auth/superuser';
import { isReservedName } from '@/lib/features/auth/reserved-names';
import { checkSettings, setting } from '@/lib/settings/settings';

const username = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9_.@-]{1,150}$/, 'letters, digits and _ . @ - only, at most 150')
  .refine((n) => !isReservedName(n), 'a name pgherd uses for itself (system, schedule, rule: ...)');
const password = z.string().min(10, 'at least 10 characters').max(1024);

async function ask(q: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  try {
    return await rl.question(q);
  } finally {
    rl.close();
  }
}

async function main() {
  checkSettings('createsuperuser');
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set');
  const args = process.argv.slice(2);
  let name: string | undefined;
  let pass: string | undefined;
  if (args.includes('--from-env')) {
    name = setting('PGHERD_ADMIN_USERNAME') ?? undefined;
    pass = setting('PGHERD_ADMIN_PASSWORD') ?? undefined;
    if (!name || !pass) {
      console.log('createsuperuser: PGHERD_ADMIN_USERNAME/PASSWORD not set; no account created');
      return;
    }
  } else {
    const at = args.indexOf('--username');
    name = at >= 0 ? args[at + 1] : await ask('Username: ');
    pass = setting('PGHERD_ADMIN_PASSWORD') ?? (await ask('Password (shown as typed): '));
  }
  const u = username.safeParse(name);
  if (!u.success) throw new Error(`username: ${u.error.issues.map((i) => i.message).join('; ')}`);
  const p = password.safeParse(pass);
  if (!p.success) throw new Error(`password: ${p.error.issues.map((i) => i.message).join('; ')}`);
  const { db, pool } = createDb(url, 1);
  try {
    await ensureAdmin(db, u.data, p.data);
  } finally {
    await pool.end();
  }
  console.log(`createsuperuser: local admin ${u.data} is ready`);
}

main().catch((err: unknown) => {
  console.error(`createsuperuser: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
