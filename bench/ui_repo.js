/* bench/ui.sh part 3: Chromium's first paint and first contentful paint of
 * a page (env URL, PAGE), median of RUNS (5) cold loads, in ms. */
'use strict';
const { chromium } = require('playwright-core');

async function main() {
	const runs = Number(process.env.RUNS || 5);
	const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
	const fp = [], fcp = [], load = [];
	try {
		for (let i = 0; i < runs; i++) {
			const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
			const page = await ctx.newPage();
			await page.goto(process.env.URL + process.env.PAGE, { waitUntil: 'load' });
			/* paint entries arrive after the frame that painted */
			await page.waitForFunction(() => performance.getEntriesByType('paint').length >= 2, null, { timeout: 10000 });
			const t = await page.evaluate(() => {
				const p = {};
				for (const e of performance.getEntriesByType('paint'))
					p[e.name] = e.startTime;
				const nav = performance.getEntriesByType('navigation')[0];
				return { fp: p['first-paint'], fcp: p['first-contentful-paint'], load: nav.loadEventEnd };
			});
			fp.push(t.fp);
			fcp.push(t.fcp);
			load.push(t.load);
			await ctx.close();
		}
	} finally {
		await browser.close();
	}
	const med = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)].toFixed(0);
	console.log(`first_paint_ms=${med(fp)} first_contentful_paint_ms=${med(fcp)} load_ms=${med(load)} (median of ${runs})`);
}

main().catch((e) => { console.error(e); process.exit(1); });
