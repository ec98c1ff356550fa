// The operator console in a real browser: Debian's Chromium driven by playwright-core, with
// the operators' client certificates (Playwright's clientCertificates). Started by console.rs,
// which runs the gateway with certificates from real lego orders and passes, in the
// environment: CONSOLE_URL, PLAYWRIGHT_DIR, SHOTS (screenshot folder), REVOKE and KEEP (two
// valid serials) and ADMIN_, AUDITOR_, CLIENT_ CERT/KEY (PEM files). Prints one JSON line of
// what it saw; any failed check throws, and the process exits non-zero.
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { mkdirSync } from 'node:fs';

const require = createRequire(`${process.env.PLAYWRIGHT_DIR}/node_modules/`);
const { chromium } = require('playwright-core');

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const base = env('CONSOLE_URL');
const shots = env('SHOTS');
mkdirSync(shots, { recursive: true });
const check = (ok, what) => {
  if (!ok) throw new Error(`check failed: ${what}`);
};
const identity = (role) =>
  role && [{ origin: base, certPath: env(`${role}_CERT`), keyPath: env(`${role}_KEY`) }];

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  // What works on the build machines: no sandbox as root, no GPU, and no calls home.
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const seen = {};
// A context per operator: the client certificate is the login.
const as = (role, viewport = { width: 1280, height: 900 }) =>
  browser.newContext({ clientCertificates: identity(role) || [], ignoreHTTPSErrors: true, viewport });

try {
  // --- admin: every page, keyboard search, and a revocation through the form.
  const admin = await as('ADMIN');
  const page = await admin.newPage();
  const csp = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) csp.push(m.text()); });
  let res = await page.goto(`${base}/console/`);
  check(res.status() === 200, `overview answers ${res.status()}`);
  check((await page.locator('h1').innerText()) === 'Overview', 'overview heading');
  check(await page.locator('svg.chart rect.bar').count() > 0, 'the expiry chart has bars');
  check(/expire in the next 90 days/.test(await page.locator('svg.chart title').first().textContent()),
    'the chart names what it shows');
  // The stylesheet applied (CSP allows 'self'): the header is dark.
  const headerBg = await page.locator('header').evaluate((e) => getComputedStyle(e).backgroundColor);
  check(headerBg === 'rgb(20, 33, 61)', `stylesheet applied (header ${headerBg})`);
  await page.screenshot({ path: `${shots}/overview.png`, fullPage: true });

  await page.goto(`${base}/console/certificates`);
  await page.screenshot({ path: `${shots}/certificates.png`, fullPage: true });
  // Keyboard only: Tab to the name field, type, Enter submits the search.
  await page.locator('input[name=name]').focus();
  await page.keyboard.type('shop.console');
  await page.keyboard.press('Enter');
  await page.waitForURL(/name=shop.console/);
  check(/1 certificate\(s\)/.test(await page.locator('caption').innerText()), 'search finds one');
  await page.locator(`a[href$="/certificates/${env('REVOKE')}"]`).click();
  check((await page.locator('h1').innerText()).includes(env('REVOKE')), 'detail page');
  check(await page.locator('pre.pem').innerText().then((t) => t.includes('BEGIN CERTIFICATE')), 'chain shown');
  await page.screenshot({ path: `${shots}/certificate.png`, fullPage: true });
  await page.locator('select[name=reason]').selectOption('keyCompromise');
  const [answer] = await Promise.all([page.waitForNavigation(),
    page.getByRole('button', { name: 'Revoke this certificate' }).click()]);
  check(/done=revoked/.test(page.url()), `revoke form answered ${answer?.status()}: ${await page.innerText('body')}`);
  check(/revoked/.test(await page.locator('.notice-ok').innerText()), 'revocation confirmed');
  check(await page.locator('.badge-bad', { hasText: 'revoked' }).count() === 1, 'state is revoked');
  await page.screenshot({ path: `${shots}/certificate-revoked.png`, fullPage: true });

  await page.goto(`${base}/console/audit`);
  check(/audit chain is intact/.test(await page.locator('.notice').first().innerText()), 'audit verified');
  await page.screenshot({ path: `${shots}/audit.png`, fullPage: true });
  await page.goto(`${base}/console/plugins`);
  await page.screenshot({ path: `${shots}/plugins.png`, fullPage: true });
  // The accounts, orders, managed and EAB pages, each reached from the navigation.
  for (const [label, shot] of [['Accounts', 'accounts'], ['Orders', 'orders'], ['Managed', 'managed'],
    ['EAB keys', 'eab-keys']]) {
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: label }).click();
    check((await page.locator('a[aria-current=page]').innerText()) === label, `${label} is the current section`);
    await page.screenshot({ path: `${shots}/${shot}.png`, fullPage: true });
  }
  // A row's button is found by the name that says which row it acts on.
  await page.goto(`${base}/console/eab-keys`);
  const revokeKey = page.getByRole('button', { name: `Revoke EAB key ${env('KID')}`, exact: true });
  check(await revokeKey.count() === 1, 'the EAB key row has a button named after the key');
  await Promise.all([page.waitForNavigation(), revokeKey.click()]);
  check(/done=revoked/.test(page.url()), `EAB revoke answered: ${await page.innerText('body')}`);
  check(await revokeKey.count() === 0, 'a revoked key has no revoke button');
  seen.eab_revoked = env('KID');
  await page.goto(`${base}/console/orders`);
  await page.locator('table a[href*="/console/orders/"]').first().click();
  check(/^Order /.test(await page.locator('h1').innerText()), 'an order page');
  check(await page.locator('td', { hasText: 'http-01' }).count() > 0, 'the order shows its challenges');
  // Keyboard focus is visible: the first Tab lands on the skip link, outlined.
  await page.keyboard.press('Tab');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  check(outline === 'solid', `focused element outline ${outline}`);
  await page.screenshot({ path: `${shots}/order.png`, fullPage: true });
  const orderUrl = page.url();
  check(csp.length === 0, `no CSP violation: ${csp.join('; ')}`);
  seen.admin_revoked = env('REVOKE');

  // Phone width: the same overview, no horizontal scrolling of the page.
  const phone = await as('ADMIN', { width: 390, height: 844 });
  const small = await phone.newPage();
  await small.goto(`${base}/console/`);
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `the phone overview scrolls sideways by ${overflow}px`);
  await small.screenshot({ path: `${shots}/overview-phone.png`, fullPage: true });
  for (const [url, shot] of [[`${base}/console/orders`, 'orders-phone'], [orderUrl, 'order-phone']]) {
    await small.goto(url);
    const wide = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(wide <= 0, `${shot} scrolls sideways by ${wide}px`);
    await small.screenshot({ path: `${shots}/${shot}.png`, fullPage: true });
  }
  await phone.close();

  // --- a cross-site form post: another origin's page makes the admin's browser post a
  // revocation (the browser sends the client certificate); the console refuses it.
  const evil = createServer((req, rsp) => {
    rsp.setHeader('content-type', 'text/html');
    rsp.end(`<form method="post" action="${base}/console/certificates/${env('KEEP')}/revoke">
      <input name="reason" value="keyCompromise"><button id="go">win a prize</button></form>`);
  });
  await new Promise((r) => evil.listen(0, '127.0.0.1', r));
  const lure = await admin.newPage();
  await lure.goto(`http://127.0.0.1:${evil.address().port}/`);
  const [forged] = await Promise.all([lure.waitForNavigation(), lure.click('#go')]);
  check(forged.status() === 403, `cross-site post answered ${forged.status()}`);
  check(/forged_request/.test(await lure.content()), 'refused as forged');
  evil.close();
  seen.cross_site = forged.status();
  await admin.close();

  // --- auditor: sees everything, no revoke form, and its forged requests are refused by the
  // API itself, straight or through the console's action with the auditor's own token.
  const auditor = await as('AUDITOR');
  const look = await auditor.newPage();
  for (const path of ['/console/', '/console/certificates', `/console/certificates/${env('KEEP')}`,
    '/console/audit', '/console/plugins']) {
    res = await look.goto(`${base}${path}`);
    check(res.status() === 200, `auditor GET ${path}: ${res.status()}`);
  }
  check(await look.getByRole('button', { name: 'Revoke this certificate' }).count() === 0, 'no revoke form for auditors');
  await look.screenshot({ path: `${shots}/auditor-certificate.png`, fullPage: true });
  const token = await look.locator('meta[name=form-token]').getAttribute('content');
  const viaConsole = await look.request.post(`${base}/console/certificates/${env('KEEP')}/revoke`, {
    form: { form_token: token, reason: 'keyCompromise' },
    headers: { origin: base },
  });
  check(viaConsole.status() === 403, `auditor console action answered ${viaConsole.status()}`);
  check(/auditor role is read-only/.test(await viaConsole.text()), 'refused for the role');
  const viaApi = await look.request.post(`${base}/api/v1/certificates/${env('KEEP')}/revoke`, {
    data: { reason: 'keyCompromise' },
  });
  check(viaApi.status() === 403, `auditor API revoke answered ${viaApi.status()}`);
  check((await viaApi.json()).detail.includes('auditor role is read-only'), 'API names the role');
  seen.auditor = [viaConsole.status(), viaApi.status()];
  await auditor.close();

  // --- a client certificate and no certificate: no console.
  const client = await as('CLIENT');
  res = await (await client.newPage()).goto(`${base}/console/`);
  check(res.status() === 403, `client role answered ${res.status()}`);
  seen.client = res.status();
  await client.close();
  const nobody = await as(null);
  const anon = await nobody.newPage();
  res = await anon.goto(`${base}/console/`).catch((e) => ({ status: () => `refused: ${e.message}` }));
  check(res.status() === 401 || String(res.status()).startsWith('refused'), `no certificate answered ${res.status()}`);
  seen.no_certificate = res.status();
  await anon.screenshot({ path: `${shots}/no-certificate.png` }).catch(() => {});
  await nobody.close();
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
