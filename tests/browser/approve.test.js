/* An approval given in the web UI (issue 15), in Debian's Chromium through
 * playwright-core. Started by tests/e2e/t_approve.sh; env: URL, TOKEN_FILE,
 * JW (a job waiting for an approval). Logs in, sees "waiting for approval",
 * clicks Approve, and sees who approved it. Exits non-zero on the first
 * failed check. */
'use strict';
const fs = require('fs');
const { chromium } = require('playwright-core');

const E = process.env;
const URL = E.URL;
const TOKEN = fs.readFileSync(E.TOKEN_FILE, 'utf8').trim();

function check(cond, what) {
	if (!cond)
		throw new Error('FAIL: ' + what);
	console.log('ok - ' + what);
}

(async () => {
	const browser = await chromium.launch({
		executablePath: '/usr/bin/chromium',
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
			'--disable-component-update', '--disable-sync'],
	});
	try {
		const page = await browser.newPage();
		await page.goto(`${URL}/login?next=/jobs/${E.JW}`);
		await page.fill('#token', TOKEN);
		await Promise.all([page.waitForURL(`${URL}/jobs/${E.JW}`), page.click('main button[type=submit]')]);
		const state = await page.textContent('#state');
		check(state === 'waiting for approval', `the job page says "${state}"`);
		check((await page.textContent('#approval')).includes('waiting for approval'), 'the facts say it waits');
		await Promise.all([page.waitForURL(`${URL}/jobs/${E.JW}`), page.click('button[value=approve]')]);
		const by = await page.textContent('#approval');
		check(/approved by web UI session [0-9a-f]{8} at/.test(by), `the job page says who approved it (${by})`);
		await page.waitForFunction(() => document.getElementById('state').textContent === 'success', null, { timeout: 60000 });
		check(true, 'the approved job ran to success, live');
	} finally {
		await browser.close();
	}
})().catch((e) => {
	console.error(e.message || e);
	process.exit(1);
});
