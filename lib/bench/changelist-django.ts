// Django 3.2's admin over pgherd's own database, for the changelist benchmark's side by side: the
// project in lib/bench/django (unmanaged models on pgherd's tables, an instances ModelAdmin shaped as
// pgherd's changelist), served by gunicorn (one sync worker: requests come one at a time, as to the
// console) with Debian's python3-django, python3-psycopg2 and python3-gunicorn (`bootstrap.sh bench`
// installs them). Django's own tables (auth, sessions, admin log) are created in the same database.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '@/lib/lab/lab';
import { freePort } from '@/lib/lab/ports';
import { waitFor } from '@/lib/testing/wait';

const DIR = path.join(PROJECT_ROOT, 'lib', 'bench', 'django');
// Debian's interpreter, which python3-django is installed for (another python3 may come first on PATH).
const PYTHON = '/usr/bin/python3';

/** Why Django cannot run here, or null when it can. */
export function djangoMissing(): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} is not installed`;
  const r = spawnSync(PYTHON, ['-c', 'import django, psycopg2, gunicorn; print(django.get_version())'], { encoding: 'utf8' });
  if (r.status !== 0) return `python3-django, python3-psycopg2 or python3-gunicorn is missing (${r.stderr.trim().split('\n').pop() ?? ''})`;
  return r.stdout.trim().startsWith('3.2') ? null : `Django ${r.stdout.trim()} is installed, not 3.2`;
}

export interface DjangoAdmin {
  url: string;
  version: string;
  cookie: string;
  stop: () => Promise<void>;
}

/** Prepares Django's tables and a superuser in `databaseUrl`, starts gunicorn and signs in. */
export async function startDjangoAdmin(databaseUrl: string): Promise<DjangoAdmin> {
  const env = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    DJANGO_SECRET_KEY: randomBytes(24).toString('hex'),
    PYTHONDONTWRITEBYTECODE: '1',
  };
  const manage = (args: string[], extra: Record<string, string> = {}) => {
    const r = spawnSync(PYTHON, ['manage.py', ...args], { cwd: DIR, env: { ...env, ...extra }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`manage.py ${args[0] ?? ''} failed: ${r.stderr.trim()}`);
    return r.stdout.trim();
  };
  const version = manage(['version']);
  manage(['migrate', '--noinput']);
  const password = randomBytes(12).toString('base64url');
  manage(['createsuperuser', '--noinput', '--username', 'bench', '--email', 'bench@example.invalid'], {
    DJANGO_SUPERUSER_PASSWORD: password,
  });
  const port = await freePort();
  const child: ChildProcess = spawn(
    PYTHON,
    ['-m', 'gunicorn', '--workers', '1', '--bind', `127.0.0.1:${port}`, '--log-level', 'warning', 'wsgi:application'],
    { cwd: DIR, env, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  };
  try {
    await waitFor('Django admin', async () => ((await fetch(`${url}/admin/login/`).catch(() => null))?.status === 200 ? true : undefined));
    return { url, version, cookie: await signIn(url, 'bench', password), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The admin's login form: its CSRF cookie and token, then the session cookie. */
async function signIn(url: string, username: string, password: string): Promise<string> {
  const page = await fetch(`${url}/admin/login/`);
  const csrf = page.headers
    .getSetCookie()
    .map((c) => c.split(';')[0] ?? '')
    .find((c) => c.startsWith('csrftoken='));
  const token = /name="csrfmiddlewaretoken" value="([^"]+)"/.exec(await page.text())?.[1];
  if (!csrf || !token) throw new Error('the Django login page has no CSRF token');
  const res = await fetch(`${url}/admin/login/?next=/admin/`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: csrf },
    body: new URLSearchParams({ csrfmiddlewaretoken: token, username, password, next: '/admin/' }),
  });
  const session = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0] ?? '')
    .find((c) => c.startsWith('sessionid='));
  if (res.status !== 302 || !session) throw new Error(`Django sign-in failed (${res.status})`);
  return `${csrf}; ${session}`;
}
