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
	if (!log || log.getAttribute('data-live') !== '1')
		return;
	var follow = document.getElementById('follow');
	var meta = document.getElementById('meta');
	/* At most data-max-lines lines stay: the oldest leave as new ones come,
	 * so a tab following a chatty build all day does not grow. */
	var maxLines = parseInt(log.getAttribute('data-max-lines'), 10) || 10000;
	var trimmed = document.getElementById('trimmed');
	var es = new EventSource(log.getAttribute('data-src'));
	es.onmessage = function (e) {
		log.insertAdjacentHTML('beforeend', e.data);
		var excess = log.childElementCount - maxLines;
		if (excess > 0) {
			while (excess-- > 0)
				log.removeChild(log.firstElementChild);
			if (trimmed)
				trimmed.hidden = false;
		}
		if (follow && follow.checked)
			window.scrollTo(0, document.documentElement.scrollHeight);
	};
	es.addEventListener('state', function (e) { setState(e.data); });
	/* Attempt, agent, times: the server's fresh rendering of the facts. */
	es.addEventListener('meta', function (e) { if (meta) meta.innerHTML = e.data; });
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
