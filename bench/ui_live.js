/* bench/ui.sh's browser half: opens the job page of a busy live job in
 * Debian's Chromium (playwright-core) and, every SAMPLE_S seconds for
 * DURATION_S, reads after a forced GC: the V8 heap used, the live DOM nodes,
 * the JS event listeners and the number of log lines on the page. Prints one
 * line per sample and a summary; asserts nothing. Env: URL, JOB, DURATION_S,
 * SAMPLE_S. */
'use strict';
const { chromium } = require('playwright-core');

(async () => {
	const E = process.env;
	const duration = Number(E.DURATION_S || 600), every = Number(E.SAMPLE_S || 30);
	const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
	try {
		const page = await (await browser.newContext()).newPage();
		await page.goto(`${E.URL}/jobs/${E.JOB}`);
		const cdp = await page.context().newCDPSession(page);
		await cdp.send('Performance.enable');
		const t0 = Date.now();
		const rows = [];
		for (;;) {
			await cdp.send('HeapProfiler.collectGarbage');
			const m = Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((x) => [x.name, x.value]));
			const heap = (await cdp.send('Runtime.getHeapUsage')).usedSize;
			const lines = await page.evaluate(() => document.querySelectorAll('#log .l').length);
			const live = await page.getAttribute('#log', 'data-live');
			const r = { t: Math.round((Date.now() - t0) / 1000), heap, nodes: m.Nodes, listeners: m.JSEventListeners, lines, live };
			rows.push(r);
			console.log(`t=${r.t}s heap_used=${heap} dom_nodes=${r.nodes} listeners=${r.listeners} log_lines=${lines} live=${live}`);
			if (r.t >= duration)
				break;
			await page.waitForTimeout(every * 1000);
		}
		const a = rows[1] || rows[0], b = rows[rows.length - 1];
		console.log(`summary: ${b.t - a.t} s of following; heap ${a.heap} -> ${b.heap} B (${b.heap - a.heap >= 0 ? '+' : ''}${b.heap - a.heap});` +
			` listeners ${a.listeners} -> ${b.listeners}; dom nodes ${a.nodes} -> ${b.nodes} (the log's own lines)`);
	} finally {
		await browser.close();
	}
})().catch((e) => { console.error(e); process.exit(1); });
