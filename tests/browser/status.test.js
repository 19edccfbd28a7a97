/* Build status people can read (issue 16), in Debian's Chromium through
 * playwright-core. Started by tests/e2e/t_ui_status.sh with a real server and
 * agent; env: URL, TOKEN_FILE, SHOTS, PS (passing pipeline on main), PT (its
 * tag's pipeline), PF (a failing pipeline of 3,025 log lines), JF (its job),
 * PL (a running pipeline), JL (its job: ticks for 50 s), AGENT_PID (the
 * agent, paused for a moment to watch a cancel being asked).
 * Exits non-zero on the first failed check. */
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const E = process.env;
const URL = E.URL;
const TOKEN = fs.readFileSync(E.TOKEN_FILE, 'utf8').trim();

/* axe-core, evaluated into each page through the DevTools protocol (the
 * pages' CSP forbids injected script tags, rightly). */
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

async function axeSerious(page) {
	await page.evaluate(AXE);
	/* The log's lines are plain text in spans (its role and tab stops are
	 * checked below); thousands of them only make axe slow. */
	const r = await page.evaluate(() => window.axe.run({ exclude: [['#log']] }, { resultTypes: ['violations'] }));
	return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
		.map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')}`);
}

function check(cond, what) {
	if (!cond)
		throw new Error('FAIL: ' + what);
	console.log('ok - ' + what);
}

/* Words of table cells (up to 20 characters: hashes and keys may break)
 * that the layout split over two lines. */
function brokenWords() {
	const out = [];
	for (const cell of document.querySelectorAll('main th, main td')) {
		if (cell.offsetParent === null || cell.closest('.sha, .msg, .hash'))
			continue;
		const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
		for (let n = walker.nextNode(); n; n = walker.nextNode()) {
			if (n.parentElement.closest('.sha, .msg, .hash'))
				continue;
			const re = /\S+/g;
			let m;
			while ((m = re.exec(n.data)) !== null) {
				if (m[0].length < 2 || m[0].length > 20)
					continue;
				const r = document.createRange();
				r.setStart(n, m.index);
				r.setEnd(n, m.index + m[0].length);
				const tops = new Set(Array.from(r.getClientRects()).filter((x) => x.width > 0).map((x) => Math.round(x.top)));
				if (tops.size > 1)
					out.push(m[0]);
			}
		}
	}
	return out;
}

/* WCAG contrast ratio of every status badge's text on its background. */
function badgeContrast() {
	const lum = (c) => {
		const v = c.match(/[\d.]+/g).slice(0, 3).map((x) => Number(x) / 255)
			.map((x) => (x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4)));
		return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
	};
	return Array.from(document.querySelectorAll('.st')).map((b) => {
		const s = getComputedStyle(b);
		const a = lum(s.color), c = lum(s.backgroundColor);
		return { text: b.textContent, ratio: (Math.max(a, c) + 0.05) / (Math.min(a, c) + 0.05) };
	});
}

async function main() {
	const browser = await chromium.launch({
		executablePath: '/usr/bin/chromium',
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
			'--disable-component-update', '--disable-sync'],
	});
	const problems = [];
	try {
		const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
		const page = await ctx.newPage();
		page.on('pageerror', (e) => problems.push('page error: ' + e.message));
		page.on('console', (m) => {
			if (m.type() === 'error' && /Content Security Policy|Refused|Uncaught/.test(m.text()))
				problems.push('console: ' + m.text());
		});

		/* Live pages: the pipeline's job matrix and the job's facts move
		 * without a reload (a marker on window survives only that). */
		await page.goto(`${URL}/pipelines/${E.PL}`);
		await page.evaluate(() => { window.__marker = 1; });
		const chip0 = await page.textContent('#jobs .job');
		check(/running \d/.test(chip0), `running pipeline shows a running chip (${chip0})`);
		await page.waitForFunction((t) => document.querySelector('#jobs .job').textContent !== t, chip0, { timeout: 5000 });
		const chip1 = await page.textContent('#jobs .job');
		check(await page.evaluate(() => window.__marker === 1), `the pipeline's job table updates live (${chip0} -> ${chip1})`);

		await page.goto(`${URL}/jobs/${E.JL}`);
		await page.evaluate(() => { window.__marker = 1; });
		const meta0 = await page.textContent('#meta');
		check(/Started\s*\d{4}-/.test(meta0) && /Queue time\s*\d/.test(meta0) && /Queued\s*\d{4}-/.test(meta0),
			`the job page shows start time, queue time and queued time (${meta0.replace(/\s+/g, ' ').slice(0, 200)})`);
		await page.waitForFunction((t) => document.getElementById('meta').textContent !== t, meta0, { timeout: 5000 });
		check(await page.evaluate(() => window.__marker === 1), 'the job page\'s duration moves live');

		/* One time format: absolute UTC shown, "ago" on hover, everywhere. */
		for (const p of [`/jobs/${E.JL}`, `/pipelines/${E.PS}`, '/pipelines', '/agents', '/deployments', '/releases']) {
			await page.goto(URL + p);
			const times = await page.$$eval('time', (n) => n.map((t) => [t.textContent, t.title, t.getAttribute('datetime')]));
			const bad = times.filter(([text, title, dt]) => !/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/.test(text) || !/ ago$/.test(title) ||
				!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(dt));
			const agoText = await page.evaluate(() => /\d(s|m) ago/.test(document.querySelector('main').innerText));
			/* (the deploy job waits for a board's agent: /deployments has no start time yet) */
			check((times.length > 0 || p === '/deployments') && bad.length === 0 && !agoText,
				`${p}: ${times.length} times, all absolute UTC with "ago" in the title (${JSON.stringify(bad.slice(0, 2))})`);
		}

		/* Cancel shows "cancelling" at once; the end arrives live. */
		await page.goto(`${URL}/login?next=/jobs/${E.JL}`);
		await page.fill('#token', TOKEN);
		await Promise.all([page.waitForURL(`${URL}/jobs/${E.JL}`), page.click('main button[type=submit]')]);
		/* The agent is paused (SIGSTOP, well within its lease) so that the
		 * time between the ask and the agent's stop is long enough to see. */
		process.kill(Number(E.AGENT_PID), 'SIGSTOP');
		let afterCancel, cancelMeta;
		try {
			await Promise.all([page.waitForURL(`${URL}/jobs/${E.JL}`), page.click('button[value=cancel]')]);
			afterCancel = await page.textContent('#state');
			cancelMeta = await page.textContent('#meta');
			await page.evaluate(() => { window.__marker = 1; });
		} finally {
			process.kill(Number(E.AGENT_PID), 'SIGCONT');
		}
		check(afterCancel === 'cancelling', `right after Cancel the job page says "${afterCancel}"`);
		check(cancelMeta.includes('waiting for the agent'), 'the facts say a cancel was asked');
		await page.waitForFunction(() => document.getElementById('state').textContent === 'canceled', null, { timeout: 30000 });
		check(await page.evaluate(() => window.__marker === 1), 'the page turns canceled live');

		/* Retry: the new job's page follows it from queued to its end. */
		await page.reload();
		await Promise.all([page.waitForURL((u) => /\/jobs\/\d+$/.test(u.pathname) && u.pathname !== `/jobs/${E.JL}`), page.click('button[value=retry]')]);
		const retryUrl = page.url();
		check(retryUrl !== `${URL}/jobs/${E.JL}`, `Retry opens the new job's page (${retryUrl})`);
		await page.evaluate(() => { window.__marker = 1; });
		/* The ticker stops early once .go is in its workspace (else 50 s). */
		await page.waitForFunction(() => document.getElementById('state').textContent === 'running', null, { timeout: 120000 });
		const retryDir = path.join(E.AGENT_WORK, 'jobs', new globalThis.URL(retryUrl).pathname.split('/').pop(), 'src');
		for (let k = 0; k < 100 && !fs.existsSync(retryDir); k++)
			await page.waitForTimeout(100);
		fs.writeFileSync(path.join(retryDir, '.go'), '');
		await page.waitForFunction(() => document.getElementById('state').textContent === 'success', null, { timeout: 120000 });
		const metaR = (await page.textContent('#meta')).replace(/\s+/g, ' ');
		check(await page.evaluate(() => window.__marker === 1) && /Agent ?a1/.test(metaR) && /Attempt ?1 of/.test(metaR) &&
			!metaR.includes('not started') && /Finished ?\d{4}-/.test(metaR),
			`after Retry the new job page shows its real state without a reload (${metaR.slice(0, 240)})`);

		/* Bugs: crushed columns, badge contrast, horizontal scroll. */
		const pages = ['/', '/pipelines', '/repos/demo', '/agents', '/boards', '/deployments', '/releases', `/pipelines/${E.PF}`, `/jobs/${E.JF}`,
			`/pipelines/${E.PS}`, `/pipelines/${E.PT}`, '/agents/a1', '/boards/bench-board-01', `/deployments/${E.DJ}`,
			'/releases?repo=demo&version=v1.0.0', '/no/such/page'];
		let axeMs = 0;
		for (const scheme of ['light', 'dark']) {
			await page.emulateMedia({ colorScheme: scheme });
			for (const width of [1400, 420]) {
				await page.setViewportSize({ width, height: 1000 });
				for (const p of pages) {
					await page.goto(URL + p);
					const broken = await page.evaluate(brokenWords);
					check(broken.length === 0, `${p} at ${width} px, ${scheme}: no table cell breaks inside a word (${broken.slice(0, 5).join(', ')})`);
					const sw = await page.evaluate(() => document.documentElement.scrollWidth);
					check(sw <= width, `${p} at ${width} px, ${scheme}: nothing scrolls sideways (${sw})`);
					const low = (await page.evaluate(badgeContrast)).filter((b) => b.ratio < 4.5);
					check(low.length === 0, `${p} ${scheme}: every badge has contrast >= 4.5:1 (${low.map((b) => b.text + ' ' + b.ratio.toFixed(2)).join(', ')})`);
					const t0 = Date.now();
					const axeBad = await axeSerious(page);
					axeMs += Date.now() - t0;
					check(axeBad.length === 0, `${p} at ${width} px, ${scheme}: axe-core finds no serious or critical violation (${axeBad.join(' | ')})`);
				}
				await page.goto(URL + '/deployments');
				await page.screenshot({ path: path.join(E.SHOTS, `status-deployments-${width}-${scheme}.png`) });
			}
		}
		console.log(`# axe-core: ${axeMs} ms over ${pages.length * 4} page views`);
		await page.emulateMedia({ colorScheme: 'light' });
		await page.setViewportSize({ width: 1400, height: 1000 });

		/* The job page: no tab stop per log line, live regions. */
		await page.goto(`${URL}/jobs/${E.JF}`);
		const lines = await page.$$eval('#log .l', (n) => n.length);
		const stops = await page.$$eval('#log a, #log button, #log [tabindex]', (n) => n.filter((e) => e.tabIndex >= 0).length);
		check(lines >= 3000 && stops === 0, `the job log (${lines} lines) holds no tab stop (${stops})`);
		let tabs = 0;
		for (; tabs < 40; tabs++) {
			await page.keyboard.press('Tab');
			/* A step's summary (it folds the step) is the log's one tab stop per step. */
			if (await page.evaluate(() => !!document.activeElement.closest('#log') && !document.activeElement.matches('summary')))
				break;
		}
		check(tabs === 40, 'tabbing through the page never lands on a log line (only on step summaries)');
		check(await page.getAttribute('#state', 'aria-live') === 'polite', 'the job state is a polite live region');
		check(await page.getAttribute('#log', 'role') === 'log', 'the log is role=log');
		/* The failing step is open; its lines are numbered from its start. */
		await page.click('#s0-L5 a.n');
		check(await page.evaluate(() => location.hash) === '#s0-L5', 'line numbers still link (#s0-L5)');

		check(problems.length === 0, 'no page errors, no console errors (CSP included): ' + problems.join(' | '));
	} finally {
		await browser.close();
	}
}

const guard = setTimeout(() => { console.error('FAIL: browser test took more than 600 s'); process.exit(1); }, 600000);
main().then(() => { clearTimeout(guard); }, (e) => { console.error(e.message || e); process.exit(1); });
