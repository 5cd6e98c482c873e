import { expect, type APIRequestContext, type Page } from '@playwright/test';
import path from 'node:path';
import { readLab } from '../lib/lab/lab';
import { query } from '../lib/lab/postgres';
import { waitFor } from '../lib/testing/wait';

export const E2E_LAB_FILE = path.join(__dirname, '..', '.lab', 'e2e-lab.json');

/**
 * The browser tests' lab on loopback addresses of its own (the integration tests' lab and theirs use
 * 127.0.1-99): `npm test` runs the two suites at once.
 */
export const E2E_SUBNETS = { fleet: '127.0.101', patroni: '127.0.120', rds: '127.0.122' };

export function e2eLab() {
  const lab = readLab(E2E_LAB_FILE);
  if (!lab.console) throw new Error('the e2e console is not running (global setup failed?)');
  return { ...lab, console: lab.console };
}

/** Fills the sign-in form on the page that is open (the sign-in page, or where a visit was sent) and submits it. */
export async function submitSignIn(page: Page, username: string, password: string) {
  await page.getByLabel('Username:', { exact: true }).fill(username);
  await page.getByLabel('Password:', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** A fresh session for `username`: cookies cleared, the sign-in page, and the header naming the user. */
export async function signInAs(page: Page, url: string, username: string, password: string) {
  await page.context().clearCookies();
  await page.goto(`${url}/login`);
  await submitSignIn(page, username, password);
  await expect(page.getByTestId('current-user')).toHaveText(username);
}

/**
 * A changelist's body rows, once every row is drawn: the page's HTML has a screenful and the table draws
 * the rest as it starts in the browser (saying aria-busy until then). For reading them all at once.
 */
export async function changelistRows(page: Page) {
  await expect(page.locator('table.result-list')).toHaveCount(1);
  await expect(page.locator('table.result-list[aria-busy]')).toHaveCount(0);
  return page.locator('table.result-list tbody tr');
}

export interface ApiOperation {
  status: string;
  params: object;
  targets: { status: string; steps: { name: string; exitCode: number | null }[] }[];
}

const ENDED = ['succeeded', 'failed', 'partial', 'cancelled'];

/** Polls GET /api/v1/operations/{id} until the operation has ended (30 s at most). */
export async function settledOperation(
  request: APIRequestContext,
  url: string,
  headers: Record<string, string>,
  id: number,
): Promise<ApiOperation> {
  let op: ApiOperation = { status: 'queued', params: {}, targets: [] };
  for (let i = 0; i < 150 && !ENDED.includes(op.status); i++) {
    op = (await (await request.get(`${url}/api/v1/operations/${id}`, { headers })).json()) as ApiOperation;
    if (!ENDED.includes(op.status)) await new Promise((r) => setTimeout(r, 200));
  }
  return op;
}

/**
 * Every instance of the lab in the inventory, the RDS herd's included: the worker's discovery brings those
 * in a few seconds after its start (waited for here, once). The fleet's and Patroni's are seeded.
 */
export async function allInstances(): Promise<number> {
  const lab = e2eLab();
  const rds = (lab.rds ?? []).flatMap((h) => h.members.map((m) => m.identifier));
  await waitFor(
    'the RDS herds discovered',
    async () => {
      const found = new Set(
        (await query<{ hostname: string }>(lab.database.url, "SELECT hostname FROM servers WHERE cloud_provider = 'rds'")).map(
          (r) => r.hostname,
        ),
      );
      return rds.every((id) => found.has(id)) || undefined;
    },
    60_000,
  );
  return lab.instances.length + rds.length;
}
