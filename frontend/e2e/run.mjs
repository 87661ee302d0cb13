// End-to-end test of the web build in a real headless Chromium (Debian's package, driven by
// Playwright with executablePath: no browser download) against a running `docmill serve`.
// tests/e2e/test_web_app.py starts the server and a scripted LLM and calls this script.
//
// env: DOCMILL_URL, DOCMILL_API_KEY, DOC_PATH (file to upload), QUESTION, EXPECT (text the
// answer and citation must contain), OUT_DIR (screenshots, axe reports), CHROMIUM (optional).
import AxeBuilder from '@axe-core/playwright';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { chromium } from 'playwright-core';

const need = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = need('DOCMILL_URL');
const apiKey = need('DOCMILL_API_KEY');
const docPath = need('DOC_PATH');
const question = need('QUESTION');
const expected = need('EXPECT');
const out = process.env.OUT_DIR || 'test-results/web-e2e';
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
mkdirSync(out, { recursive: true });

const byId = (page, id) => page.locator(`[data-testid="${id}"]`);
const report = { screens: [] };

/** Screenshot and axe check of the screen as it is now; serious or critical findings fail. */
async function check(page, name) {
  await page.screenshot({ path: join(out, `${name}.png`) });
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  writeFileSync(join(out, `${name}.axe.json`), JSON.stringify(result.violations, null, 2));
  report.screens.push({ name, violations: result.violations.map((v) => `${v.impact} ${v.id}`), passes: result.passes.length });
  if (bad.length) {
    const detail = bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join('; ')})`);
    throw new Error(`axe found serious violations on ${name}:\n${detail.join('\n')}`);
  }
  console.log(`ok ${name}: screenshot + axe (${result.violations.length} minor findings)`);
}

const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
let failure = null;
const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
const page = await context.newPage();
const consoleErrors = [];
page.on('pageerror', (e) => consoleErrors.push(String(e)));
// Generous waits: CI machines are small and shared; a healthy run takes about a minute.
page.setDefaultTimeout(60_000);
try {
  // Sign in: a wrong key is refused with a message, the tenant's key opens the notice board.
  await page.goto(base);
  await byId(page, 'login-key').waitFor();
  await byId(page, 'login-key').fill('not-a-key');
  await byId(page, 'login-submit').click();
  await byId(page, 'login-error').waitFor();
  await check(page, '01-sign-in');
  await byId(page, 'login-key').fill(apiKey);
  await byId(page, 'login-submit').click();
  await byId(page, 'tab-notices').waitFor();

  // Documents: upload with progress, then the row follows the server to `indexed`.
  await byId(page, 'tab-documents').click();
  await byId(page, 'upload-input').setInputFiles(docPath);
  const row = byId(page, 'document-row').filter({ hasText: basename(docPath) });
  await row.waitFor();
  await row.locator('[data-testid="document-status"]', { hasText: 'indexed' }).waitFor({ timeout: 600_000 });
  await check(page, '02-documents');

  // Notice board: a pinned notice linking the document, shown at the top.
  await byId(page, 'tab-notices').click();
  await byId(page, 'notice-new').click();
  await byId(page, 'notice-title').fill('Friday canteen hours');
  await byId(page, 'notice-body').fill('The canteen closes early on Fridays; details in the linked handbook.');
  await byId(page, 'notice-pinned-switch').click();
  await page.getByRole('checkbox', { name: `Link ${basename(docPath)}` }).click();
  await check(page, '03-notice-form');
  await byId(page, 'notice-save').click();
  const notice = byId(page, 'notice').first();
  await notice.filter({ hasText: 'Friday canteen hours' }).waitFor();
  await notice.locator('[data-testid="notice-document"]', { hasText: basename(docPath) }).waitFor();
  await check(page, '04-notices');

  // Chat: a streamed answer with a citation, and the citation opens its source.
  await byId(page, 'tab-chat').click();
  await byId(page, 'chat-input').fill(question);
  await byId(page, 'chat-send').click();
  const citation = byId(page, 'citation').first();
  await citation.waitFor({ timeout: 300_000 });
  const answer = await byId(page, 'chat-answer').first().innerText();
  if (!answer.includes(expected)) throw new Error(`the answer does not contain ${JSON.stringify(expected)}: ${answer}`);
  const cited = await citation.innerText();
  if (!cited.includes(basename(docPath))) throw new Error(`the citation does not name the document: ${cited}`);
  await check(page, '05-chat');
  await citation.click();
  await byId(page, 'citation-source').waitFor();
  const snippet = await byId(page, 'citation-snippet').innerText();
  if (!snippet.includes(expected)) throw new Error(`the opened source does not show the passage: ${snippet}`);
  await page.getByText('status: indexed').waitFor();
  await check(page, '06-citation-source');

  // Jobs: the screen loads (empty state on a fresh tenant).
  await byId(page, 'citation-back').click();
  await byId(page, 'tab-jobs').click();
  await byId(page, 'job-dataset-new').waitFor();
  await page.locator('[data-testid="empty"], [data-testid="job-row"]').first().waitFor();
  await check(page, '07-jobs');
  if (consoleErrors.length) throw new Error(`page errors: ${consoleErrors.join('\n')}`);
} catch (error) {
  failure = error;
  await page.screenshot({ path: join(out, 'failure.png') }).catch(() => undefined);
} finally {
  writeFileSync(join(out, 'report.json'), JSON.stringify({ ...report, error: failure ? String(failure.stack ?? failure) : null }, null, 2));
  await browser.close();
}
if (failure) {
  console.error(failure);
  process.exit(1);
}
console.log(`e2e passed; screenshots in ${out}`);
