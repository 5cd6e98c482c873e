// Wide changelists at a common laptop width: nothing is cut off without a way to see it. The page
// itself never scrolls sideways; a table wider than its box scrolls inside the box, and its last
// column can be scrolled into view there.
import { adminModels } from '@/lib/features/admin/registry';
import { e2eLab, signInAs } from './lab';
import { expect, test } from './fixtures';

const lab = e2eLab();
const url = lab.console.url;

test.use({ viewport: { width: 1440, height: 900 } });

test('every changelist at 1440 px: the page does not overflow, and each list\u2019s last column is reachable in its own box', async ({
  page,
}) => {
  test.setTimeout(120_000);
  await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
  const models = adminModels.map((m) => m.name);
  expect(models).toContain('dr');
  for (const model of models) {
    await page.goto(`${url}/admin/${model}`);
    const box = page.getByTestId('results-box');
    if (!(await box.count())) continue; // an empty list shows no table
    await expect(box, model).toBeVisible();
    const pageWidth = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(pageWidth, `${model}: the page is ${pageWidth} px wide`).toBeLessThanOrEqual(1440);
    // Scrolled fully to the right, the last header cell lies within the box.
    const seen = await box.evaluate((el) => {
      el.scrollLeft = el.scrollWidth;
      const ths = el.querySelectorAll('thead th');
      const last = ths[ths.length - 1]!.getBoundingClientRect();
      const b = el.getBoundingClientRect();
      return { lastRight: last.right, lastLeft: last.left, boxRight: b.right, boxLeft: b.left, wide: el.scrollWidth > el.clientWidth };
    });
    expect(seen.lastRight, `${model}: ${JSON.stringify(seen)}`).toBeLessThanOrEqual(seen.boxRight + 1);
    // And no column is wider than the box (a long value is cut, all of it in the cell's title and on its page).
    expect(seen.lastLeft, `${model}: ${JSON.stringify(seen)}`).toBeGreaterThanOrEqual(seen.boxLeft - 1);
    if (model === 'dr') await page.screenshot({ path: test.info().outputPath('dr-pairs-1440.png') });
  }
});
