// The directory down. It stops the lab's slapd, so it runs after every other browser test (its own
// project in playwright.config.ts, which depends on the one that runs them all).
import { expect, test } from './fixtures';
import { e2eLab, signInAs, submitSignIn } from './lab';
import { stopPid } from '../lib/lab/proc';

const lab = e2eLab();
const url = lab.console.url;

test('with the directory down, the sign-in page says so and the local admin still signs in', async ({ page }) => {
  const slapd = lab.processes.find((p) => p.name === 'slapd')!;
  await stopPid(slapd.pid, 'SIGTERM');
  await page.goto(`${url}/login`);
  await submitSignIn(page, 'alice', lab.ldap!.users[0]!.password);
  await expect(page.locator('.errornote')).toContainText('The directory (LDAP) cannot be reached');
  await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
});
