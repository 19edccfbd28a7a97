/* Steps on the job page (issue 16), in Debian's Chromium through
 * playwright-core. Started by tests/e2e/t_ui_steps.sh; env: URL, J (a failed
 * job: steps prepare, forge, "build with <secret>" failing after 50,000
 * lines, collect), VALUE (the secret), SHOTS. Exits non-zero on the first
 * failed check. */
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const E = process.env;

function check(cond, what) {
	if (!cond)
		throw new Error('FAIL: ' + what);
	console.log('ok - ' + what);
}

async function main() {
	const browser = await chromium.launch({
		executablePath: '/usr/bin/chromium',
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
			'--disable-component-update', '--disable-sync'],
	});
	const problems = [];
	fs.mkdirSync(E.SHOTS, { recursive: true });
	try {
		for (const scheme of ['light', 'dark']) {
			for (const width of [1400, 420]) {
				const ctx = await browser.newContext({ viewport: { width, height: 900 }, colorScheme: scheme });
				const page = await ctx.newPage();
				page.on('pageerror', (e) => problems.push('page error: ' + e.message));
				const t0 = Date.now();
				await page.goto(`${E.URL}/jobs/${E.J}`);
				const what = `${scheme} ${width}px`;
				const open = await page.$$eval('#log details.step', (d) => d.map((x) => x.open));
				check(open.length === 4 && open[2] && !open[0] && !open[1] && !open[3],
					`${what}: the failing step is expanded, the other three folded (${JSON.stringify(open)})`);
				const last = await page.evaluate(() => {
					const id = document.getElementById('log').getAttribute('data-scroll');
					const el = id && document.getElementById(id);
					if (!el)
						return null;
					const r = el.getBoundingClientRect();
					return { id, text: el.textContent, inView: r.top >= 0 && r.bottom <= window.innerHeight,
						inStep: !!el.closest('#step-2') };
				});
				check(last && last.inView && last.inStep && /\[anvil\] step build with \*\*\* exited 3/.test(last.text),
					`${what}: the failing step's last line is in view (${JSON.stringify(last)}, ${Date.now() - t0} ms)`);
				const before = await page.$eval(`#${last.id}`, (el) => el.previousElementSibling.textContent);
				check(before.includes('error: the failing line'), `${what}: the failing line sits just above it`);
				const wide = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
				check(wide <= 0, `${what}: nothing scrolls sideways (${wide} px)`);
				const html = await page.content();
				check(!html.includes(E.VALUE), `${what}: the secret appears nowhere on the page`);
				const summary = await page.textContent('#step-2 > summary');
				check(/failed/.test(summary) && /build with \*\*\*/.test(summary) && /exit 3/.test(summary),
					`${what}: the step header reads "${summary.replace(/\s+/g, ' ').trim()}"`);
				const cmd = await page.textContent('#step-2 pre.cmd');
				check(cmd.startsWith('$ echo "using ***"') && !/^\[anvil\]/m.test(await page.textContent('#seg-5')),
					`${what}: the command shows as a command, not as output`);
				const list = await page.$$eval('#meta ol.steps li', (li) => li.map((x) => x.textContent.replace(/\s+/g, ' ').trim()));
				check(list.length === 4 && /^failed build with \*\*\*/.test(list[2]) && !list.some((x) => x.includes('evil')),
					`${what}: the step list (${list.join(' | ')})`);
				if (scheme === 'light' && width === 1400) {
					const cut = await page.textContent('#step-2 p.cut');
					check(/raw log/.test(cut), `the big step says where its earlier lines are (${cut.trim()})`);
					check(!(await page.isVisible('#step-2 .ts')), 'line times hidden by default');
					await page.check('#times');
					const ts = await page.textContent(`#${last.id} .ts`);
					check(await page.isVisible(`#${last.id} .ts`) && /^\d\d:\d\d:\d\d\.\d{3}$/.test(ts),
						`the times toggle shows each line's time (${ts})`);
					await page.uncheck('#times');
					await page.click('#step-0 > summary');
					check(await page.$eval('#step-0', (d) => d.open) &&
						/prepared/.test(await page.textContent('#step-0 .lines')), 'a folded step opens on click');
				}
				await page.screenshot({ path: path.join(E.SHOTS, `steps-${scheme}-${width}.png`) });
				await ctx.close();
			}
		}
		check(problems.length === 0, `no page errors (${problems.join('; ')})`);
	} finally {
		await browser.close();
	}
}

main().catch((e) => {
	console.error(e.message || e);
	process.exit(1);
});
