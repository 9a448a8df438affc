// End-to-end test of the demo page in a real browser: Debian's chromium,
// driven by playwright-core, with a fake camera that plays a real webcam clip
// (y4m). Run by tests/integ/test_browser_demo.py, which starts faceauthd
// --demo, converts the clips and passes:
//   FA_URL            http://127.0.0.1:PORT
//   FA_CLIP_SAME      y4m of the person who enrolls (and then authenticates)
//   FA_CLIP_OTHER     y4m of another person
//   FA_OUT            directory for the screenshots
//   FA_NODE_MODULES   node_modules holding playwright-core
//   FA_CHROMIUM       the browser executable
//   FA_TIMEOUT_MS     per-step timeout
// Prints one line per step and exits non-zero on the first failure.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(process.env.FA_NODE_MODULES, 'x.js'));
const { chromium } = require('playwright-core');

const url = process.env.FA_URL;
const out = process.env.FA_OUT;
const timeout = Number(process.env.FA_TIMEOUT_MS || 60000);
const user = 'e2e-' + process.pid;

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

async function browserWith(clip) {
  const browser = await chromium.launch({
    executablePath: process.env.FA_CHROMIUM,
    headless: true,
    args: [
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--use-file-for-fake-video-capture=' + clip,
      '--disable-gpu',
      '--disable-dev-shm-usage',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  await context.grantPermissions(['camera'], { origin: url });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(url + '/demo/');
  return { browser, page, consoleErrors };
}

// Click a button and wait for the page to show an outcome; returns
// {outcome, title, details, guidance, progress}.
async function session(page, button, shot) {
  await page.click(button);
  await page.waitForFunction(() => {
    const r = document.getElementById('result');
    return !r.hidden && r.dataset.outcome !== 'none';
  }, null, { timeout });
  const res = await page.evaluate(() => {
    const r = document.getElementById('result');
    return {
      outcome: r.dataset.outcome,
      title: r.querySelector('h3') ? r.querySelector('h3').textContent : '',
      details: r.querySelector('pre') ? r.querySelector('pre').textContent : '',
      guidance: document.getElementById('guidance').textContent,
      progress: [document.getElementById('progress').value,
                 document.getElementById('progress').max],
      status: document.getElementById('status').textContent,
      log: Array.from(document.querySelectorAll('#log li')).map((li) => li.textContent),
    };
  });
  await page.screenshot({ path: path.join(out, shot), fullPage: true });
  console.log(JSON.stringify({ step: shot, outcome: res.outcome, title: res.title,
                               status: res.status, progress: res.progress }));
  return res;
}

async function main() {
  // 1. the person of clip A enrolls, then verifies (1:1) and is identified (1:N)
  let b = await browserWith(process.env.FA_CLIP_SAME);
  try {
    const page = b.page;
    const explain = await page.textContent('#explain');
    check(/your backend/i.test(explain) && /--demo/.test(explain),
          'the page explains the real integration');
    await page.fill('#user-id', user);
    let r = await session(page, '#btn-enroll', '01-enrolled.png');
    check(r.outcome === 'enrolled', 'enrollment completes: ' + JSON.stringify(r));
    const dec = JSON.parse(r.details);
    check(dec.session_type === 'enrollment' && typeof dec.id === 'string',
          'the demo backend decrypted the enrollment result');
    check(r.progress[0] >= r.progress[1] && r.progress[1] >= 1, 'progress reached the target');
    check(r.log.some((l) => /frame: counted/.test(l)),
          'frame_processed messages were shown');

    r = await session(page, '#btn-verify', '02-verified.png');
    check(r.outcome === 'authenticated', 'verification of the same person succeeds: ' +
          JSON.stringify(r));
    check(JSON.parse(r.details).id === user, 'the decrypted id is the user');

    r = await session(page, '#btn-identify', '03-identified.png');
    check(r.outcome === 'authenticated' && r.title.includes(user),
          'identification finds the same person: ' + JSON.stringify(r));
    check(b.consoleErrors.length === 0, 'no console errors: ' + b.consoleErrors.join(' | '));
  } finally {
    await b.browser.close();
  }

  // 2. another person (clip B) claims the same user id: refused
  b = await browserWith(process.env.FA_CLIP_OTHER);
  try {
    await b.page.fill('#user-id', user);
    const r = await session(b.page, '#btn-verify', '04-other-person-refused.png');
    check(r.outcome === 'refused', 'another person is refused: ' + JSON.stringify(r));
    check(JSON.parse(r.details).id === null, 'the decrypted id of a refusal is null');
  } finally {
    await b.browser.close();
  }
  console.log('e2e: all steps passed');
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
