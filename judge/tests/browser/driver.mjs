// Drives real Chromium for judge/tests/browser.rs. Serves a small page from its own origin (a
// static server on another loopback port), opens it, and has the page's JavaScript call the
// judge with fetch(): X-Auth-Token and a JSON body make the browser send a CORS preflight
// first, so this works only if the judge answers preflights as Judge0 does. No request is
// intercepted (Playwright's route() would answer preflights itself and hide CORS).
//
// Environment: JUDGE_URLS (space-separated: each judge, or gateway, to call), JUDGE_REFUSING_URL
// (a judge whose DISALLOW_ORIGIN refuses this page), JUDGE_TOKEN. Prints one JSON line:
// {"origin": ..., "results": {url: {...}}, "refused": ...}.

import http from 'node:http';
import { chromium } from 'playwright-core';

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>A Judge0 client on another origin</title>
<script>
// Creates a submission, polls it until it is finished, and reads it back; then tries an
// anonymous request, whose 401 a page can read only when the answer carries CORS headers.
async function judge(base, token) {
  const headers = { 'Content-Type': 'application/json', 'X-Auth-Token': token };
  const body = JSON.stringify({ source_code: 'print(input()[::-1])', language_id: 71, stdin: 'olleh' });
  const created = await fetch(base + '/submissions?base64_encoded=false', { method: 'POST', headers, body });
  const { token: submission } = await created.json();
  let shown;
  for (;;) {
    const r = await fetch(base + '/submissions/' + submission + '?fields=stdout,status', { headers });
    shown = await r.json();
    if (shown.status.id > 2) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const anonymous = await fetch(base + '/languages');
  return { created: created.status, stdout: shown.stdout, status: shown.status, anonymous: anonymous.status };
}

// A judge that refuses this origin: the browser must block the call.
async function refused(base, token) {
  try {
    await fetch(base + '/submissions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Auth-Token': token },
      body: JSON.stringify({ source_code: 'print(1)', language_id: 71 }),
    });
    return 'not blocked';
  } catch (e) {
    return e.name;
  }
}
</script>
<p>Verdict browser test page.</p>
`;

setTimeout(() => {
  console.error("the browser test did not finish within 120 s");
  process.exit(3);
}, 120_000).unref();

const urls = (process.env.JUDGE_URLS || '').split(' ').filter(Boolean);
const refusingUrl = process.env.JUDGE_REFUSING_URL;
const token = process.env.JUDGE_TOKEN;
if (urls.length === 0 || !refusingUrl || !token) {
  console.error('JUDGE_URLS, JUDGE_REFUSING_URL and JUDGE_TOKEN are required');
  process.exit(2);
}

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(PAGE);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
  timeout: 60_000,
});
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(60_000);
  const console_lines = [];
  page.on('console', (m) => console_lines.push(m.text()));
  await page.goto(origin + '/');
  const results = {};
  for (const url of urls) {
    // A failure is reported with what the browser said about it (CORS errors go to the
    // console), and the other URLs are still tried.
    try {
      results[url] = await page.evaluate(([base, t]) => judge(base, t), [url, token]);
    } catch (e) {
      results[url] = { error: String(e.message || e), console: console_lines.splice(0) };
    }
  }
  const blocked = await page.evaluate(([base, t]) => refused(base, t), [refusingUrl, token]);
  console.log(JSON.stringify({ origin, results, refused: blocked, console: console_lines }));
} finally {
  await browser.close();
  server.close();
}
