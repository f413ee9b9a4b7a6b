// vigie's status page: polls /status.json and draws it. No framework, no third-party code.
// Every value is written with textContent (never parsed as HTML). The admin token, when the
// listener asks for one, is kept in this closure only: never in storage, cookies or URLs.
'use strict';
(function () {
  const POLL_MS = 2000;
  const SVG = 'http://www.w3.org/2000/svg';
  const CLASSES = ['2xx', '3xx', '4xx', '5xx', '1xx', 'none'];
  let token = null;
  let timer = null;

  const $ = (id) => document.getElementById(id);

  // el('td', {class: 'num', 'data-label': 'p50'}, 'text', child...)
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function badge(kind, text) {
    return el('span', { class: 'badge ' + kind }, text);
  }

  function when(s) {
    if (s === null || s === undefined) return '–';
    return new Date(s * 1000).toLocaleString(undefined, {
      year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
      second: '2-digit',
    });
  }

  function span(seconds) {
    const a = Math.abs(seconds);
    if (a < 90) return Math.round(a) + ' s';
    if (a < 5400) return Math.round(a / 60) + ' min';
    if (a < 172800) return Math.round(a / 3600) + ' h';
    return Math.round(a / 86400) + ' days';
  }

  function relative(s, now) {
    if (s === null || s === undefined) return '';
    const d = s - now;
    return d >= 0 ? 'in ' + span(d) : span(d) + ' ago';
  }

  function bytes(n) {
    if (n === null || n === undefined) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + ' ' + units[i];
  }

  function ms(v) {
    if (v === null || v === undefined) return '–';
    return v < 10 ? v.toFixed(2) + ' ms' : Math.round(v) + ' ms';
  }

  function table(headers, rows, caption) {
    const head = el('tr', {}, ...headers.map((h) => el('th', { scope: 'col', class: h.num ? 'num' : null }, h.label)));
    const body = rows.map((cells) => {
      const tr = el('tr', cells.attrs || {});
      cells.cells.forEach((c, i) => {
        const td = el('td', { 'data-label': headers[i].label, class: [headers[i].num ? 'num' : '', c.class || ''].join(' ').trim() || null },
          ...(Array.isArray(c.value) ? c.value : [c.value]));
        tr.append(td);
      });
      return tr;
    });
    const t = el('table', { class: 'rows' }, caption ? el('caption', { class: 'muted' }, caption) : null,
      el('thead', {}, head), el('tbody', {}, ...body));
    return el('div', { class: 'wrap' }, t);
  }

  const cell = (value, cls) => ({ value: value, class: cls });

  function fill(id, title, ...content) {
    const s = $(id);
    s.replaceChildren(el('h2', { id: id + '-h' }, title), ...content.filter((c) => c !== null && c !== undefined));
  }

  function classesText(c) {
    return CLASSES.filter((k) => c[k] > 0 || k === '2xx')
      .map((k) => k + ' ' + c[k]).join(' · ');
  }

  function sparkline(site, step) {
    const points = site.history;
    const w = 300, h = 40;
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('role', 'img');
    const total = points.reduce((a, p) => a + p.requests.total, 0);
    const errors = points.reduce((a, p) => a + p.requests['5xx'], 0);
    const label = 'Requests per ' + step + ' s over the last ' + span(points.length * step) +
      ': ' + total + ' in all, ' + errors + ' with 5xx';
    svg.setAttribute('aria-label', label);
    const title = document.createElementNS(SVG, 'title');
    title.textContent = label;
    svg.append(title);
    const slots = Math.max(points.length, 150);
    const max = Math.max(1, ...points.map((p) => p.requests.total));
    const bw = w / slots;
    points.forEach((p, i) => {
      let y = h;
      const x = (slots - points.length + i) * bw;
      for (const k of CLASSES) {
        const n = p.requests[k];
        if (!n) continue;
        const bh = (n / max) * (h - 2);
        y -= bh;
        const r = document.createElementNS(SVG, 'rect');
        r.setAttribute('x', x.toFixed(2));
        r.setAttribute('y', y.toFixed(2));
        r.setAttribute('width', Math.max(bw - 0.4, 0.6).toFixed(2));
        r.setAttribute('height', bh.toFixed(2));
        r.setAttribute('fill', 'var(--c' + k + ')');
        svg.append(r);
      }
    });
    return svg;
  }

  function legend(c) {
    return el('div', { class: 'legend' }, ...CLASSES.filter((k) => k !== 'none' && k !== '1xx').map((k) =>
      el('span', {}, el('span', { class: 'swatch', style: 'background: var(--c' + k + ')', 'aria-hidden': 'true' }), k + ': ' + c[k])));
  }

  function renderProcess(d) {
    const p = d.process;
    const fact = (k, v, attrs) => el('div', attrs || {}, el('dt', {}, k), el('dd', {}, ...(Array.isArray(v) ? v : [v])));
    const r = p.last_reload;
    let reload;
    if (!r) reload = [badge('info', 'none yet'), ' config loaded ' + when(p.config_loaded_at)];
    else if (r.result === 'applied') reload = [badge('ok', '✔ applied'), ' ' + when(r.at)];
    else reload = [badge('bad', '✖ refused'), ' ' + when(r.at)];
    const facts = el('dl', { class: 'facts' },
      fact('Version', p.version),
      fact('Uptime', span(p.uptime_seconds) + ' (since ' + when(p.started_at) + ')'),
      fact('Connections', String(p.connections)),
      fact('Requests in flight', String(p.requests_in_flight)),
      fact('Memory (RSS)', bytes(p.memory_rss_bytes)),
      fact('Config', [el('code', {}, p.config_hash), ' loaded ' + when(p.config_loaded_at)]),
      fact('Reloads', p.reloads_applied + ' applied, ' + p.reloads_refused + ' refused'),
      fact('Last reload', reload, { id: 'reload', 'data-result': r ? r.result : 'none' }));
    const extra = r && r.error ? el('pre', { class: 'error', id: 'reload-error' }, 'Reload refused, the running configuration keeps serving:\n' + r.error) : null;
    fill('process', 'Process', facts, extra);
  }

  function renderSites(d) {
    if (!d.sites.length) return fill('sites', 'Sites and routes', el('p', { class: 'empty' }, 'No site configured.'));
    const blocks = d.sites.map((s) => {
      const tls = s.tls === 'none' ? badge('warn', 'plain HTTP') : badge('info', 'TLS: ' + s.tls);
      const head = el('div', { class: 'sitehead' }, el('h3', {}, s.names.join(', ')), tls,
        el('span', {}, s.rate_per_second.toFixed(2) + ' req/s (last minute)'),
        el('span', { class: 'muted' }, s.requests.total + ' since start'));
      const routes = table(
        [{ label: 'Route' }, { label: 'Match' }, { label: 'Does' }, { label: 'Uses' }, { label: 'Requests', num: true }, { label: 'By status' }],
        s.routes.map((r) => ({
          cells: [cell(el('code', {}, r.path)), cell(r.match), cell(r.kind),
            cell([r.upstream && 'upstream ' + r.upstream, r.limit && 'limit ' + r.limit, r.cache && 'cache ' + r.cache].filter(Boolean).join(', ') || '–'),
            cell(String(r.requests.total)), cell(classesText(r.requests))],
        })));
      return el('div', { class: 'site', 'data-site': s.name }, head, sparkline(s, d.history_step_seconds), legend(s.requests), routes);
    });
    fill('sites', 'Sites and routes', ...blocks);
  }

  function serverState(s, now) {
    if (s.state === 'up') return [badge('ok', '▲ up'), s.since ? ' since ' + relative(s.since, now).replace(' ago', '') : ''];
    const why = s.down_by === 'failures' ? 'down: failures' : 'down: health check';
    const parts = [badge('bad', '▼ ' + why)];
    if (s.since) parts.push(' for ' + span(now - s.since));
    if (s.down_until) parts.push(', retried ' + relative(s.down_until, now));
    return parts;
  }

  function renderUpstreams(d) {
    if (!d.upstreams.length) return fill('upstreams', 'Upstreams', el('p', { class: 'empty' }, 'No upstream group.'));
    const now = d.generated_at;
    const blocks = d.upstreams.map((u) => {
      const hc = u.health_check
        ? 'health check GET ' + u.health_check.path + ' every ' + u.health_check.interval_seconds + ' s (rise ' + u.health_check.rise + ', fall ' + u.health_check.fall + ')'
        : 'no active health check';
      const up = u.servers.filter((s) => s.state === 'up').length;
      return el('div', { 'data-upstream': u.name },
        el('h3', {}, u.name + ' ', el('span', { class: 'muted' }, up + '/' + u.servers.length + ' up · ' + u.balance + ' · ' + hc)),
        table(
          [{ label: 'Server' }, { label: 'State' }, { label: 'In flight', num: true }, { label: 'p50', num: true }, { label: 'p99', num: true },
            { label: 'Responses', num: true }, { label: '5xx', num: true }, { label: 'Failures', num: true }, { label: 'Last check error' }],
          u.servers.map((s) => ({
            attrs: { 'data-server': u.name + '/' + s.address },
            cells: [cell(el('code', {}, s.address)), { value: serverState(s, now), class: 'state' },
              cell(String(s.in_flight)), cell(ms(s.latency.p50_ms)), cell(ms(s.latency.p99_ms)),
              cell(String(s.responses)), cell(String(s.responses_5xx)), cell(String(s.failures)),
              cell(s.last_check_error || '–', s.last_check_error ? 'err' : '')],
          })), 'latency: time to response header over the last ' + span(u.servers.length ? u.servers[0].latency.window_seconds : 0)));
    });
    fill('upstreams', 'Upstreams', ...blocks);
  }

  function renderCerts(d) {
    if (!d.certificates.length) return fill('certificates', 'Certificates', el('p', { class: 'empty' }, 'No TLS site.'));
    const now = d.generated_at;
    const outcome = (c) => {
      if (c.last_outcome === 'ok') return badge('ok', '✔ ok');
      if (c.last_outcome === 'failed') return badge('bad', '✖ failed (' + c.failures + ')');
      if (c.last_outcome === 'pending') return badge('warn', '… pending');
      return el('span', { class: 'muted' }, 'not ACME');
    };
    const expiry = (c) => {
      if (!c.not_after) return '–';
      const days = (c.not_after - now) / 86400;
      const kind = days < 0 ? 'bad' : days < 7 ? 'warn' : null;
      const text = when(c.not_after) + ' (' + relative(c.not_after, now) + ')';
      return kind ? badge(kind, (days < 0 ? 'expired ' : 'soon: ') + text) : text;
    };
    const cluster = (c) => {
      if (!c.ordered_by && !c.lock_holder) return '–';
      const parts = [];
      if (c.ordered_by) parts.push('ordered by ' + c.ordered_by + (c.ordered_at ? ', ' + when(c.ordered_at) : ''));
      if (c.lock_holder) parts.push(el('br'), badge('warn', 'lock held by ' + c.lock_holder));
      return parts;
    };
    fill('certificates', 'Certificates', table(
      [{ label: 'Names' }, { label: 'Source' }, { label: 'Issuer' }, { label: 'Expires' }, { label: 'Next renewal' },
        { label: 'Last ACME outcome' }, { label: 'ARI window' }, { label: 'Cluster' }],
      d.certificates.map((c) => ({
        attrs: { 'data-cert': c.names[0] },
        cells: [cell(c.names.join(', ')), cell(c.source), cell(c.issuer || '–'), cell(expiry(c)),
          { value: c.renew_at ? [when(c.renew_at) + ' (' + relative(c.renew_at, now) + ')', el('br'), el('span', { class: 'muted' }, c.renewal)] : el('span', { class: 'muted' }, c.renewal), class: 'renew' },
          { value: [outcome(c), c.last_error ? el('div', { class: 'err' }, c.last_error) : null], class: 'outcome' },
          cell(c.ari_window ? when(c.ari_window.start) + ' – ' + when(c.ari_window.end) : '–'),
          { value: cluster(c), class: 'cluster' }],
      }))));
  }

  function renderLimits(d) {
    if (!d.limits.length) return fill('limits', 'Rate limits', el('p', { class: 'empty' }, 'No rate-limit zone.'));
    fill('limits', 'Rate limits', table(
      [{ label: 'Zone' }, { label: 'Rate' }, { label: 'Clients tracked', num: true }, { label: 'Allowed', num: true },
        { label: 'Delayed', num: true }, { label: 'Rejected', num: true }, { label: 'Most limited clients' }],
      d.limits.map((z) => ({
        attrs: { 'data-limit': z.name },
        cells: [cell(z.name), cell(z.rate + ', burst ' + z.burst), cell(z.tracked_clients + ' / ' + z.max_clients),
          cell(String(z.allowed)), cell(String(z.delayed)), cell(String(z.rejected)),
          cell(z.top_limited.length ? z.top_limited.map((t) => t.client + ' ×' + t.limited).join(', ') : '–')],
      }))));
  }

  function meter(used, max) {
    if (max === null || max === undefined) return '–';
    const pct = max > 0 ? Math.min(100, (used / max) * 100) : 0;
    const bar = el('span', { class: 'meter', role: 'presentation' }, el('span', {}));
    bar.firstChild.style.width = pct.toFixed(1) + '%';
    return [bar, ' ' + bytes(used) + ' of ' + bytes(max) + ' (' + pct.toFixed(0) + '%)'];
  }

  function renderCaches(d) {
    if (!d.caches.length) return fill('caches', 'Cache', el('p', { class: 'empty' }, 'No cache zone.'));
    fill('caches', 'Cache', table(
      [{ label: 'Zone' }, { label: 'Hit ratio', num: true }, { label: 'Memory' }, { label: 'Disk' }, { label: 'Entries', num: true },
        { label: 'Evictions', num: true }, { label: 'Requests' }],
      d.caches.map((c) => ({
        attrs: { 'data-cache': c.name },
        cells: [cell(c.name), cell(c.hit_ratio === null ? '–' : (c.hit_ratio * 100).toFixed(1) + ' %'),
          cell(meter(c.memory_bytes, c.memory_max)), cell(meter(c.disk_bytes, c.disk_max)),
          cell(c.memory_entries + (c.disk_entries === null ? '' : ' + ' + c.disk_entries + ' on disk')),
          cell(String(c.evictions)),
          cell(Object.entries(c.requests).map(([k, v]) => k + ' ' + v).join(' · ') || '–')],
      }))));
  }

  function render(d) {
    const parts = [renderProcess, renderSites, renderUpstreams, renderCerts, renderLimits, renderCaches];
    for (const part of parts) {
      try { part(d); } catch (e) { console.error(part.name, e); }
    }
    document.body.setAttribute('data-generated', String(d.generated_at));
  }

  function setConn(kind, text) {
    const c = $('conn');
    c.replaceChildren(kind === 'ok' ? text : badge(kind, text));
  }

  function showLogin(status, message) {
    $('login').hidden = false;
    $('login-why').textContent = message.trim();
    $('login-form').hidden = status === 403;
    setConn('warn', status === 403 ? 'no admin token configured' : 'admin token needed');
    if (status !== 403) $('token').focus();
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(poll, POLL_MS);
  }

  async function poll() {
    let res;
    try {
      const headers = token ? { Authorization: 'Bearer ' + token } : {};
      res = await fetch('/status.json', { headers: headers, cache: 'no-store', credentials: 'omit' });
    } catch (e) {
      setConn('bad', 'cannot reach vigie (' + e.message + '); retrying');
      return schedule();
    }
    if (res.status === 401 || res.status === 403) {
      return showLogin(res.status, await res.text());
    }
    if (!res.ok) {
      setConn('bad', 'status.json answered ' + res.status + '; retrying');
      return schedule();
    }
    try {
      render(await res.json());
      $('login').hidden = true;
      setConn('ok', 'live · updated ' + new Date().toLocaleTimeString() + ' · every ' + POLL_MS / 1000 + ' s');
    } catch (e) {
      setConn('bad', 'cannot read status.json (' + e.message + ')');
    }
    schedule();
  }

  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    token = $('token').value.trim() || null;
    $('token').value = '';
    poll();
  });

  poll();
})();
