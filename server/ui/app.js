/* anvil web UI: dashboard self-refresh and the live job log. No framework.
 * Text from repositories arrives already HTML-escaped by the server (one C
 * function); what this script writes itself goes through textContent. */
'use strict';
(function () {
	var dash = document.getElementById('dash');
	if (dash) {
		/* One timer, one fetch in flight, the fragment replaced in place:
		 * no listener and no node survives a refresh. */
		var ms = parseInt(dash.getAttribute('data-refresh-ms'), 10) || 5000;
		var n = 0;
		var tick = function () {
			if (document.hidden) {
				setTimeout(tick, ms);
				return;
			}
			fetch(dash.getAttribute('data-src'), { credentials: 'same-origin', cache: 'no-store' })
				.then(function (r) { return r.ok ? r.text() : Promise.reject(new Error(String(r.status))); })
				.then(function (t) { dash.innerHTML = t; })
				.catch(function () { /* keep the last view; try again next tick */ })
				.then(function () {
					n++;
					document.body.setAttribute('data-refreshes', String(n));
					setTimeout(tick, ms);
				});
		};
		setTimeout(tick, ms);
	}

	var state = document.getElementById('state');
	var setState = function (s) {
		if (!state || !s)
			return;
		state.textContent = s;
		state.className = 'st st-' + s.replace(/[^a-z]/g, '');
	};

	/* A part of a page the server re-renders while anything on it runs
	 * (the pipeline page's jobs): replaced in place, then closed at the end. */
	var part = document.querySelector('[data-events]');
	if (part) {
		var ps = new EventSource(part.getAttribute('data-events'));
		ps.addEventListener('page', function (e) { part.innerHTML = e.data; });
		ps.addEventListener('state', function (e) { setState(e.data); });
		ps.addEventListener('end', function (e) {
			ps.close();
			setState(e.data);
			part.removeAttribute('data-events');
		});
	}

	var log = document.getElementById('log');
	if (!log)
		return;
	/* A link to a line of a folded step (#s2-L7) opens the step. */
	var reveal = function () {
		var t = location.hash.length > 1 && document.getElementById(location.hash.slice(1));
		var d = t && t.closest('details');
		if (d && !d.open) {
			d.open = true;
			t.scrollIntoView({ block: 'center' });
		}
	};
	reveal();
	window.addEventListener('hashchange', reveal);
	/* A failed job opens at its failing step's last line (the server opened
	 * that step and names the line), unless the address names a line. */
	var scrollId = log.getAttribute('data-scroll');
	if (scrollId && !location.hash) {
		var last = document.getElementById(scrollId);
		if (last)
			last.scrollIntoView({ block: 'center' });
	}
	if (log.getAttribute('data-live') !== '1')
		return;
	var follow = document.getElementById('follow');
	var meta = document.getElementById('meta');
	/* At most data-max-lines lines stay: the oldest leave as new ones come,
	 * so a tab following a chatty build all day does not grow. */
	var maxLines = parseInt(log.getAttribute('data-max-lines'), 10) || 10000;
	var trimmed = document.getElementById('trimmed');
	/* Lines go into the current segment of the log: a step's section (its
	 * <details>) or the log itself; "seg" events open the next one. */
	var sink = document.getElementById('seg-' + log.getAttribute('data-seg')) || log;
	var count = log.querySelectorAll('.l').length;
	/* The step list in #meta is live; the sections' badges and durations
	 * follow it. */
	var syncSteps = function () {
		var items = document.querySelectorAll('#meta ol.steps li');
		for (var i = 0; i < items.length; i++) {
			var from = items[i].querySelector('.st');
			var to = document.querySelector('#step-' + i + ' > summary .st');
			if (from && to && to.textContent !== from.textContent) {
				to.textContent = from.textContent;
				to.className = from.className;
			}
			var fromDur = items[i].querySelector('.dur');
			var toDur = document.querySelector('#step-' + i + ' > summary .dur');
			if (fromDur && toDur && toDur.textContent !== fromDur.textContent)
				toDur.textContent = fromDur.textContent;
		}
	};
	var es = new EventSource(log.getAttribute('data-src'));
	es.onmessage = function (e) {
		var before = sink.childElementCount;
		sink.insertAdjacentHTML('beforeend', e.data);
		count += sink.childElementCount - before;
		if (count > maxLines) {
			while (count > maxLines) {
				var first = log.querySelector('.l');
				if (!first)
					break;
				first.remove();
				count--;
			}
			if (trimmed)
				trimmed.hidden = false;
		}
		if (follow && follow.checked)
			window.scrollTo(0, document.documentElement.scrollHeight);
	};
	es.addEventListener('seg', function (e) {
		log.insertAdjacentHTML('beforeend', e.data);
		var c = log.lastElementChild;
		sink = (c && (c.classList.contains('lines') ? c : c.querySelector('.lines'))) || log;
		syncSteps();
	});
	es.addEventListener('state', function (e) { setState(e.data); });
	/* Attempt, agent, times, steps: the server's fresh rendering of the facts. */
	es.addEventListener('meta', function (e) {
		if (meta)
			meta.innerHTML = e.data;
		syncSteps();
	});
	es.addEventListener('end', function (e) {
		/* A finished stream is closed for good: no reconnect, no timer. */
		es.close();
		setState(e.data);
		log.setAttribute('data-live', '0');
		var cancel = document.querySelector('form[action$="/cancel"]');
		if (cancel)
			cancel.remove(); /* a reload offers the retry form */
		var arts = document.getElementById('artifacts');
		if (arts)
			fetch(arts.getAttribute('data-src'), { credentials: 'same-origin', cache: 'no-store' })
				.then(function (r) { return r.ok ? r.text() : ''; })
				.then(function (t) { if (t) arts.innerHTML = t; });
	});
})();
