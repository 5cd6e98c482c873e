// A changelist's page carries a screenful of rows in its HTML and every row in its data; the table draws
// the rest as it starts in the browser. What a user gets is the whole page, and every row is selectable.
import { query } from '../lib/lab/postgres';
import { changelistRows, e2eLab, signInAs } from './lab';
import { expect, test } from './fixtures';

const lab = e2eLab();
const url = lab.console.url;
const ROWS = 40;

test('a page of 40: 25 rows in the HTML, all 40 drawn in the browser, each selectable', async ({ page }) => {
  await query(
    lab.database.url,
    `INSERT INTO sites (name, description) SELECT 'deferred-' || lpad(g::text, 2, '0'), 'row ' || g FROM generate_series(1, ${ROWS}) g`,
  );
  try {
    await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
    const list = `${url}/admin/sites?q=deferred-`;
    // What the server sends: the first 25 rows, and the table saying that more are coming.
    const html = await (await page.request.get(list)).text();
    const body = /<tbody>(.*?)<\/tbody>/s.exec(html)?.[1] ?? '';
    expect(body.match(/<tr[ >]/g)).toHaveLength(25);
    expect(html).toContain('aria-busy="true"');
    expect(html).toContain('deferred-25');
    expect(body).not.toContain('deferred-26');

    await page.goto(list);
    const rows = await changelistRows(page);
    await expect(rows).toHaveCount(ROWS);
    await expect(rows.last()).toContainText('deferred-40');
    await page.getByLabel('Select all on this page').check();
    await expect(page.getByTestId('selection-count')).toHaveText(`${ROWS} of ${ROWS} selected`);
    // A row drawn by the browser is as selectable as one the server drew.
    await page.getByLabel('Select deferred-33').uncheck();
    await expect(page.getByTestId('selection-count')).toHaveText(`${ROWS - 1} of ${ROWS} selected`);
    await expect(page.locator('tr.selected')).toHaveCount(ROWS - 1);
  } finally {
    await query(lab.database.url, "DELETE FROM sites WHERE name LIKE 'deferred-%'");
  }
});
