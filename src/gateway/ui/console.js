/*
 * smc console: a single-page view of one gateway's REST API (docs/console.md).
 *
 * No framework and no build step: this file is served as it is from the
 * binary (GET /ui/console.js). Pages are chosen by the URL's fragment:
 *   #/                           machines
 *   #/machine/M                  a machine: diagram, states, transitions,
 *                                its objects (paged, searchable), a create form
 *   #/machine/M/object/O         an object: state, data, checksum, history,
 *                                pending proposals and their votes, live by SSE;
 *                                forms to propose a transition and to vote
 *   #/nodes                      the node table
 * Every request goes to this gateway with relative URLs and carries the token
 * of the token field (kept in sessionStorage) as `Authorization: Bearer`.
 * The live view reads the watch route's SSE stream with fetch and a
 * ReadableStream, so it sends that header too (EventSource cannot).
 * Every error is shown as the API answered it: status, code and message.
 */
'use strict';

(function () {
  const TOKEN_KEY = 'smc.token';
  const PAGE = 50; /* objects per page */

  /* ------------------------------------------------------------ helpers */

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === undefined || kid === null || kid === false) continue;
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }

  const enc = encodeURIComponent;
  const sleep = (ms, signal) => new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (signal) signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });

  function when(ms) {
    if (!ms) return '';
    const d = new Date(ms);
    return d.toLocaleString(undefined, { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
  }

  function ago(ms) {
    if (ms < 1000) return ms + ' ms ago';
    if (ms < 120000) return (ms / 1000).toFixed(1) + ' s ago';
    return Math.round(ms / 60000) + ' min ago';
  }

  function duration(ms) {
    const units = [[86400000, 'd'], [3600000, 'h'], [60000, 'm'], [1000, 's']];
    for (const [u, s] of units) if (ms > 0 && ms % u === 0) return ms / u + s;
    return ms + 'ms';
  }

  const short = (id) => (id && id.length > 16 ? id.slice(0, 12) + '…' : id || '');
  const pretty = (v) => JSON.stringify(v, null, 2);

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

  function authHeaders(extra) {
    const h = Object.assign({}, extra || {});
    const t = token();
    if (t) h.Authorization = 'Bearer ' + t;
    return h;
  }

  /*
   * One request to the gateway: {status, ok, json, text, headers}. Network
   * failures come back as status 0 with a client-side error body, so every
   * caller shows one kind of error box.
   */
  async function api(method, path, opts) {
    const o = opts || {};
    const init = { method, headers: authHeaders(o.headers), cache: 'no-store', signal: o.signal };
    if (o.body !== undefined) {
      init.body = o.body;
      init.headers['Content-Type'] = 'application/json';
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      if (o.signal && o.signal.aborted) throw e;
      return { status: 0, ok: false, text: '', json: { error: { code: 'network', message: String(e) } } };
    }
    const text = await res.text();
    let json = null;
    if ((res.headers.get('Content-Type') || '').startsWith('application/json') && text.trim()) {
      try { json = JSON.parse(text); } catch (e) { json = null; }
    }
    return { status: res.status, ok: res.ok, json, text, headers: res.headers };
  }

  /* The error of an answer as the API gave it: status, code, message (and path). */
  function errorBox(res, what) {
    const err = (res.json && res.json.error) || {};
    const box = el('div', { class: 'result error', role: 'alert' },
      what ? el('div', { class: 'muted', text: what }) : null,
      el('span', { class: 'error-status mono', text: res.status ? 'HTTP ' + res.status + ' ' : '' }),
      el('span', { class: 'error-code', text: err.code || 'error' }),
      el('span', { class: 'error-message', text: err.message || res.text || '(no body)' }));
    if (err.path) box.append(el('div', { class: 'muted mono', text: 'path: ' + err.path }));
    if (Array.isArray(err.errors)) {
      for (const d of err.errors)
        box.append(el('div', { class: 'mono', text: `${d.code} ${d.line}:${d.column} ${d.message}` }));
    }
    return box;
  }

  function replace(node, ...kids) {
    node.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined));
  }

  function badge(text, cls) { return el('span', { class: 'badge ' + (cls || ''), text }); }

  function kv(pairs) {
    const dl = el('dl', { class: 'kv' });
    for (const [k, v, id] of pairs) dl.append(el('dt', { text: k }), el('dd', { id }, v));
    return dl;
  }

  function table(headers, rows, attrs) {
    return el('table', attrs || {},
      el('thead', {}, el('tr', {}, headers.map((h) => el('th', { class: h.endsWith('#') ? 'num' : null, text: h.replace(/#$/, '') })))),
      el('tbody', {}, rows));
  }

  function votesCell(votes) {
    const v = votes || {};
    const acc = v.accept || [], rej = v.reject || [];
    if (!acc.length && !rej.length) return el('span', { class: 'muted', text: '—' });
    return el('span', { class: 'votes' },
      acc.map((n) => badge('✓ ' + n, 'accept')), rej.map((n) => badge('✗ ' + n, 'reject')));
  }

  /* A Graphviz SVG as a DOM node, without scripts, event handlers or outside links. */
  function svgNode(text) {
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
    const svg = doc.documentElement;
    if (!svg || svg.nodeName !== 'svg' || doc.getElementsByTagName('parsererror').length) return null;
    svg.querySelectorAll('script, foreignObject, iframe').forEach((n) => n.remove());
    for (const n of svg.querySelectorAll('*')) {
      for (const a of Array.from(n.attributes)) {
        if (/^on/i.test(a.name) || (/href$/i.test(a.name) && !a.value.startsWith('#'))) n.removeAttribute(a.name);
      }
    }
    return document.importNode(svg, true);
  }

  /* Fill box with machine m's diagram (SVG from GET /machine/{m}/diagram);
   * the state `current`, when given, is highlighted. */
  async function loadDiagram(box, m, current, signal) {
    const res = await api('GET', `machine/${enc(m)}/diagram?format=svg`, { signal });
    const ok = res.status === 200;
    const svg = ok ? svgNode(res.text) : null;
    if (svg) {
      svg.setAttribute('role', 'img');
      svg.setAttribute('aria-label', 'state diagram of ' + m);
      replace(box, svg);
      highlight(box, current);
      return;
    }
    /* no Graphviz on the gateway's host: the DOT text smc diagram gives */
    const dot = await api('GET', `machine/${enc(m)}/diagram?format=dot`, { signal });
    replace(box, errorBox(res, 'The SVG diagram is not available; the DOT source:'),
      dot.status === 200 ? el('pre', { class: 'json', text: dot.text }) : null);
  }

  function highlight(box, state) {
    for (const g of box.querySelectorAll('g.node')) {
      const title = g.querySelector('title');
      g.classList.toggle('current', !!state && !!title && title.textContent === state);
    }
  }

  /* ------------------------------------------------------------ routing */

  let page = null; /* {abort: AbortController} of the page shown */

  function route() {
    if (page) page.abort.abort();
    page = { abort: new AbortController() };
    const view = document.getElementById('view');
    const hash = location.hash.replace(/^#\/?/, '');
    const parts = hash ? hash.split('/').map(decodeURIComponent) : [];
    document.getElementById('nav-machines').classList.toggle('active', parts[0] !== 'nodes');
    document.getElementById('nav-nodes').classList.toggle('active', parts[0] === 'nodes');
    replace(view);
    const ctx = { view, signal: page.abort.signal };
    let p;
    if (parts.length === 0) p = machinesPage(ctx);
    else if (parts[0] === 'nodes' && parts.length === 1) p = nodesPage(ctx);
    else if (parts[0] === 'machine' && parts.length === 2) p = machinePage(ctx, parts[1]);
    else if (parts[0] === 'machine' && parts.length === 4 && parts[2] === 'object') p = objectPage(ctx, parts[1], parts[3]);
    else p = Promise.resolve(view.append(el('div', { class: 'panel', text: 'No such page: #/' + hash })));
    p.catch((e) => {
      if (!ctx.signal.aborted) view.append(el('div', { class: 'result error', text: String(e) }));
    });
  }

  const machineHref = (m) => '#/machine/' + enc(m);
  const objectHref = (m, o) => '#/machine/' + enc(m) + '/object/' + enc(o);

  /* ------------------------------------------------------------ machines */

  async function machinesPage(ctx) {
    ctx.view.append(el('h1', { text: 'Machines' }));
    const box = el('div', { class: 'grid cards', id: 'machines' });
    ctx.view.append(box);
    const res = await api('GET', 'machine', { signal: ctx.signal });
    if (res.status !== 200) return box.replaceWith(errorBox(res, 'GET /machine'));
    const list = res.json.machines || [];
    if (!list.length) box.append(el('div', { class: 'panel muted', text: 'No machine is registered yet (POST /machine/{name}).' }));
    for (const m of list) {
      box.append(el('a', { class: 'panel card machine-link', href: machineHref(m.name), 'data-machine': m.name },
        el('h2', { text: m.name }),
        el('p', { text: m.description || '' }),
        el('div', { class: 'muted mono', text: 'hash ' + m.hash.slice(0, 16) })));
    }
  }

  /* ------------------------------------------------------------ a machine */

  async function machinePage(ctx, m) {
    const res = await api('GET', `machine/${enc(m)}`, { signal: ctx.signal });
    ctx.view.append(el('div', { class: 'crumbs' }, el('a', { href: '#/', text: 'Machines' }), ' / ', m));
    if (res.status !== 200) return ctx.view.append(errorBox(res, 'GET /machine/' + m));
    const def = res.json;
    const diagram = el('div', { class: 'diagram', id: 'diagram' }, el('span', { class: 'muted', text: 'loading…' }));
    const objects = el('div', { id: 'objects' });
    ctx.view.append(
      el('h1', { id: 'machine-name' }, def.name, el('small', { text: def.description || '' })),
      el('div', { class: 'muted mono', text: `${def.dfsm ? 'dfsm' : 'ndfsm'} · hash ${def.hash}` }),
      el('div', { class: 'grid two' },
        el('div', {}, el('div', { class: 'panel' }, el('h2', { text: 'Diagram' }), diagram),
          el('div', { class: 'panel' }, el('h2', { text: 'Transitions' }), transitionsTable(def))),
        el('div', {}, el('div', { class: 'panel' }, el('h2', { text: 'Create an object' }), createForm(m, def)),
          el('div', { class: 'panel' }, el('h2', { text: 'States' }), statesTable(def)))),
      el('div', { class: 'panel' }, el('h2', { text: 'Objects' }), objects));
    await Promise.all([loadDiagram(diagram, m, null, ctx.signal), objectList(ctx, objects, m)]);
  }

  function statesTable(def) {
    return table(['state', 'kind', 'description'], def.states.map((s) =>
      el('tr', {}, el('td', {}, badge(s.name, s.final ? 'final' : '')),
        el('td', { text: s.final ? 'final' : '' }), el('td', { text: s.description || '' }))));
  }

  function transitionsTable(def) {
    return table(['transition', 'from', 'to', 'timer', 'votes'], def.transitions.map((t) =>
      el('tr', {}, el('td', { class: 'mono', text: t.name }),
        el('td', { text: t.creates ? '(creates)' : t.from_any ? 'any' : t.from.join(', ') }),
        el('td', { text: t.to }),
        el('td', { text: t.after_ms ? 'after ' + duration(t.after_ms) : '' }),
        el('td', { text: t.votes ? `${t.votes.quorum} of ${t.votes.voters}` : '' }))), { id: 'transitions' });
  }

  function createForm(m, def) {
    const creating = def.transitions.filter((t) => t.creates);
    const id = el('input', { id: 'create-id', required: true, placeholder: 'object id', spellcheck: 'false' });
    const tr = el('select', { id: 'create-transition' }, creating.map((t) => el('option', { value: t.name, text: t.name })));
    const data = el('textarea', { id: 'create-data', spellcheck: 'false' });
    data.value = '{}';
    const out = el('div', { id: 'create-result' });
    const form = el('form', { class: 'stack', id: 'create-form' },
      el('div', { class: 'row' }, el('label', { for: 'create-id', text: 'id' }), id,
        el('label', { for: 'create-transition', text: 'transition' }), tr),
      el('label', { for: 'create-data', text: 'data (JSON, checked by the gateway)' }), data,
      el('div', { class: 'row' }, el('button', { type: 'submit', text: 'Create' })), out);
    if (!creating.length) {
      replace(form, el('p', { class: 'muted', text: 'No transition of this machine creates objects.' }));
      return form;
    }
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      replace(out, el('span', { class: 'muted', text: 'proposing…' }));
      const o = id.value.trim();
      const res = await api('PUT', `machine/${enc(m)}/object/${enc(o)}/transition/${enc(tr.value)}?expect_version=0`,
        { body: data.value });
      if (res.status === 200) location.hash = objectHref(m, o);
      else if (res.status === 202) replace(out, pendingBox(res.json));
      else replace(out, errorBox(res));
    });
    return form;
  }

  /* The machine's objects, a page at a time, searchable by id prefix. */
  async function objectList(ctx, box, m) {
    const q = el('input', { id: 'object-search', type: 'search', placeholder: 'id or id prefix', spellcheck: 'false' });
    const body = el('div', { id: 'object-page' });
    const pager = el('div', { class: 'pager' });
    box.append(el('form', { class: 'search', id: 'object-search-form' }, q, el('button', { type: 'submit', text: 'Search' })), body, pager);
    const st = { stack: [], after: null, prefix: '' };

    async function show() {
      replace(body, el('span', { class: 'muted', text: 'loading…' }));
      replace(pager);
      /* ids are listed in bytewise order: the ids starting with a prefix
       * come right after it, and the prefix itself is one GET */
      let exact = null;
      if (st.prefix && st.after === null) {
        const r = await api('GET', `machine/${enc(m)}/object/${enc(st.prefix)}?wait=5s`, { signal: ctx.signal });
        if (r.status === 200) exact = r.json;
      }
      const after = st.after !== null ? st.after : st.prefix || null;
      const res = await api('GET', `machine/${enc(m)}/object?limit=${PAGE}` + (after !== null ? '&after=' + enc(after) : ''), { signal: ctx.signal });
      if (res.status !== 200) return replace(body, errorBox(res, 'GET /machine/' + m + '/object'));
      let objs = res.json.objects;
      let next = res.json.next;
      if (st.prefix) {
        const n = objs.length;
        objs = objs.filter((o) => o.object.startsWith(st.prefix));
        if (objs.length < n) next = null;
        if (exact) objs.unshift(exact);
      }
      if (!objs.length) {
        replace(body, el('p', { class: 'muted', text: st.prefix ? `No object id starts with “${st.prefix}”.` : 'No objects yet.' }));
      } else {
        replace(body, table(['object', 'state', 'version#', 'updated'], objs.map((o) =>
          el('tr', { 'data-object': o.object },
            el('td', {}, el('a', { class: 'mono object-link', href: objectHref(m, o.object), text: o.object })),
            el('td', {}, badge(o.state)), el('td', { class: 'num', text: o.version }),
            el('td', { class: 'muted', text: when(o.updated) }))), { id: 'objects-table' }));
      }
      const prev = el('button', { class: 'quiet', type: 'button', text: '← Previous', disabled: !st.stack.length });
      const nextB = el('button', { class: 'quiet', type: 'button', id: 'objects-next', text: 'Next →', disabled: !next });
      prev.addEventListener('click', () => { st.after = st.stack.pop(); show(); });
      nextB.addEventListener('click', () => { st.stack.push(st.after); st.after = next; show(); });
      replace(pager, prev, nextB, el('span', { class: 'muted', text: `${objs.length} shown` }));
    }
    box.querySelector('form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      st.prefix = q.value.trim();
      st.stack = [];
      st.after = null;
      show();
    });
    await show();
  }

  /* ------------------------------------------------------------ an object */

  function pendingBox(j) {
    return el('div', { class: 'result info', id: 'pending-result' },
      badge('pending', 'pending'), ' proposal ', el('span', { class: 'mono', text: short(j.proposal) }),
      ` (${j.transition}) waits for votes.`);
  }

  async function objectPage(ctx, m, o) {
    ctx.view.append(el('div', { class: 'crumbs' }, el('a', { href: '#/', text: 'Machines' }), ' / ',
      el('a', { href: machineHref(m), text: m }), ' / ', o));
    const live = el('span', { class: 'live off', id: 'live', text: 'connecting' });
    ctx.view.append(el('h1', {}, el('span', { class: 'mono', id: 'object-id', text: o }), el('small', { text: m }), live));
    const defRes = await api('GET', `machine/${enc(m)}`, { signal: ctx.signal });
    if (defRes.status !== 200) return ctx.view.append(errorBox(defRes, 'GET /machine/' + m));
    const def = defRes.json;
    const current = el('div', { id: 'current' });
    const diagram = el('div', { class: 'diagram', id: 'diagram' });
    const history = el('div', { id: 'history' });
    const pending = el('div', { id: 'pending' });
    const st = { obj: null, version: 0, rows: new Map() };
    const propose = proposeForm(m, o, def, st, () => refreshPending());
    const vote = voteForm(m, o, def, () => refreshPending());
    ctx.view.append(
      el('div', { class: 'grid two' },
        el('div', {}, el('div', { class: 'panel' }, el('h2', { text: 'Current version' }), current),
          el('div', { class: 'panel' }, el('h2', { text: 'Diagram' }), diagram)),
        el('div', {}, el('div', { class: 'panel' }, el('h2', { text: 'Propose a transition' }), propose.form),
          el('div', { class: 'panel' }, el('h2', { text: 'Pending proposals' }), pending),
          el('div', { class: 'panel' }, el('h2', { text: 'Vote' }), vote.form))),
      el('div', { class: 'panel' }, el('h2', { text: 'History' }), history));

    function showCurrent(obj) {
      if (!obj.created && st.obj) obj.created = st.obj.created; /* a commit event may not carry it */
      st.obj = obj;
      st.version = obj.version;
      replace(current, kv([
        ['state', badge(obj.state, 'state'), 'obj-state'],
        ['version', String(obj.version), 'obj-version'],
        ['checksum', el('span', { class: 'mono', text: obj.checksum }), 'obj-checksum'],
        ['created', when(obj.created), 'obj-created'],
        ['updated', when(obj.updated), 'obj-updated'],
      ]), el('h2', { text: 'Data' }), el('pre', { class: 'json', id: 'obj-data', text: pretty(obj.data) }));
      highlight(diagram, obj.state);
      propose.update(obj);
    }

    const histBody = el('tbody');
    const histError = el('div');
    const histTable = table(['version#', 'transition', 'state', 'votes', 'proposal', 'committed', ''], [], { id: 'history-table' });
    histTable.replaceChild(histBody, histTable.querySelector('tbody'));
    history.append(histError, histTable);
    let histAfter = 0;
    async function loadHistory() {
      for (;;) {
        const res = await api('GET', `machine/${enc(m)}/object/${enc(o)}/history?limit=1000&after=${histAfter}`, { signal: ctx.signal });
        replace(histError, res.status === 200 ? null : errorBox(res, 'GET …/history'));
        if (res.status !== 200) return;
        for (const v of res.json.versions) {
          if (st.rows.has(v.version)) continue;
          const row = el('tr', { 'data-version': v.version, class: histAfter ? 'flash' : null },
            el('td', { class: 'num', text: v.version }), el('td', { class: 'mono', text: v.transition }),
            el('td', {}, badge(v.state)), el('td', {}, votesCell(v.votes)),
            el('td', { class: 'mono', title: v.proposal, text: short(v.proposal) }),
            el('td', { class: 'muted', text: when(v.updated) }),
            el('td', {}, el('details', {}, el('summary', { text: 'data' }), el('pre', { class: 'json', text: pretty(v.data) }))));
          st.rows.set(v.version, row);
          histBody.prepend(row); /* newest first */
          histAfter = Math.max(histAfter, v.version);
        }
        if (res.json.next === null || res.json.next === undefined) break;
      }
    }

    async function refreshPending() {
      const res = await api('GET', `machine/${enc(m)}/object/${enc(o)}/pending`, { signal: ctx.signal });
      if (res.status !== 200) return replace(pending, errorBox(res, 'GET …/pending'));
      const list = res.json.proposals || [];
      if (!list.length) return replace(pending, el('p', { class: 'muted', id: 'pending-none', text: 'No proposal is pending.' }));
      replace(pending, table(['proposal', 'transition', 'status', 'votes', 'vote deadline', ''], list.map((p) =>
        el('tr', { 'data-proposal': p.proposal },
          el('td', { class: 'mono', title: p.proposal }, short(p.proposal)),
          el('td', { class: 'mono', text: p.transition }),
          el('td', {}, badge(p.status, p.status)),
          el('td', {}, votesCell(p.votes)),
          el('td', { title: p.deadline ? when(p.deadline) : null,
            text: p.deadline ? new Date(p.deadline).toLocaleTimeString(undefined, { hour12: false }) : '' }),
          el('td', {}, p.status === 'waiting' ? el('button', { class: 'quiet', type: 'button', text: 'vote',
            onclick: () => vote.pick(p) }) : null))), { id: 'pending-table' }));
    }

    const first = await api('GET', `machine/${enc(m)}/object/${enc(o)}?wait=5s`, { signal: ctx.signal });
    if (first.status !== 200) {
      replace(current, errorBox(first, 'GET /machine/' + m + '/object/' + o));
      live.className = 'live off';
      live.textContent = 'not live';
      await loadDiagram(diagram, m, null, ctx.signal);
      return;
    }
    showCurrent(first.json);
    await Promise.all([loadDiagram(diagram, m, first.json.state, ctx.signal), loadHistory(), refreshPending()]);

    /* live: each commit the gateway sees comes as one SSE event */
    watch(ctx, m, o, () => st.version, async (obj) => {
      if (obj.version <= st.version) return;
      showCurrent(obj);
      await Promise.all([loadHistory(), refreshPending()]);
    }, (state, text) => { live.className = 'live ' + state; live.textContent = text; });
  }

  /*
   * Follow GET …/watch as an SSE stream (fetch + ReadableStream, so the
   * bearer token goes in the header): onCommit(obj) for each `commit` event,
   * reconnecting after the stream's timeout or a failure, from the newest
   * version seen. Ends when the page is left.
   */
  async function watch(ctx, m, o, version, onCommit, setLive) {
    while (!ctx.signal.aborted) {
      try {
        const res = await fetch(`machine/${enc(m)}/object/${enc(o)}/watch?after_version=${version()}&timeout=300s`,
          { headers: authHeaders({ Accept: 'text/event-stream' }), cache: 'no-store', signal: ctx.signal });
        if (res.status !== 200 || !res.body) {
          let msg = 'HTTP ' + res.status;
          try { const j = await res.json(); msg += ' ' + j.error.code + ': ' + j.error.message; } catch (e) { /* no body */ }
          setLive('retry', 'not live (' + msg + '), retrying');
          await sleep(5000, ctx.signal);
          continue;
        }
        setLive('on', 'live');
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf = (buf + value).replace(/\r\n?/g, '\n');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let event = 'message', data = [];
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) continue; /* keepalive */
              const c = line.indexOf(':');
              const field = c < 0 ? line : line.slice(0, c);
              const val = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
              if (field === 'event') event = val;
              else if (field === 'data') data.push(val);
            }
            if (event === 'commit' && data.length) await onCommit(JSON.parse(data.join('\n')));
          }
        }
      } catch (e) {
        if (ctx.signal.aborted) return;
        setLive('retry', 'reconnecting');
        await sleep(2000, ctx.signal);
      }
    }
  }

  function transitionOptions(def, obj) {
    const from = (t) => !t.creates && (t.from_any || t.from.includes(obj.state));
    const now = def.transitions.filter(from), other = def.transitions.filter((t) => !from(t));
    const opt = (t) => el('option', { value: t.name, text: t.name + (t.votes ? ` (${t.votes.quorum} of ${t.votes.voters} votes)` : '') + (t.after_ms ? ` (timer ${duration(t.after_ms)})` : '') });
    return [el('optgroup', { label: `from ${obj.state}` }, now.map(opt)),
      other.length ? el('optgroup', { label: 'others (the gateway decides)' }, other.map(opt)) : null];
  }

  function proposeForm(m, o, def, st, onPending) {
    const tr = el('select', { id: 'propose-transition' });
    const data = el('textarea', { id: 'propose-data', spellcheck: 'false' });
    data.value = '{}';
    const fence = el('input', { type: 'checkbox', id: 'propose-fence', checked: true });
    const fenceLabel = el('label', { for: 'propose-fence', text: 'only at version —' });
    const key = el('input', { id: 'propose-key', placeholder: 'Idempotency-Key (optional)', spellcheck: 'false' });
    const out = el('div', { id: 'propose-result' });
    const form = el('form', { class: 'stack', id: 'propose-form' },
      el('div', { class: 'row' }, el('label', { for: 'propose-transition', text: 'transition' }), tr),
      el('label', { for: 'propose-data', text: 'data (JSON, checked by the gateway)' }), data,
      el('div', { class: 'row' }, fence, fenceLabel, key),
      el('div', { class: 'row' }, el('button', { type: 'submit', text: 'Propose' })), out);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      replace(out, el('span', { class: 'muted', text: 'proposing…' }));
      let q = '?wait=5s';
      if (fence.checked && st.obj) q += '&expect_version=' + st.obj.version;
      const headers = key.value.trim() ? { 'Idempotency-Key': key.value.trim() } : {};
      const res = await api('PUT', `machine/${enc(m)}/object/${enc(o)}/transition/${enc(tr.value)}${q}`, { body: data.value, headers });
      if (res.status === 200) {
        replace(out, el('div', { class: 'result ok' }, badge(res.json.outcome || 'committed', 'committed'),
          ` version ${res.json.version}, state ${res.json.state}`, res.json.duplicate ? ' (a duplicate: decided before)' : ''));
      } else if (res.status === 202) {
        replace(out, pendingBox(res.json));
        onPending();
      } else {
        replace(out, errorBox(res));
      }
    });
    return {
      form,
      update(obj) {
        const keep = tr.value;
        replace(tr, transitionOptions(def, obj));
        if (keep && Array.from(tr.options).some((x) => x.value === keep)) tr.value = keep;
        fenceLabel.textContent = `only at version ${obj.version} (expect_version)`;
      },
    };
  }

  function voteForm(m, o, def, onVoted) {
    const voted = def.transitions.filter((t) => t.votes);
    const tr = el('select', { id: 'vote-transition' }, voted.map((t) => el('option', { value: t.name, text: t.name })));
    const voter = el('input', { id: 'vote-voter', placeholder: 'voter (e.g. node-2)', spellcheck: 'false', required: true });
    const accept = el('select', { id: 'vote-accept' }, el('option', { value: 'true', text: 'accept' }), el('option', { value: 'false', text: 'reject' }));
    const reason = el('input', { id: 'vote-reason', placeholder: 'reason (optional)' });
    const proposal = el('input', { id: 'vote-proposal', placeholder: 'proposal id (default: the newest pending)', spellcheck: 'false' });
    const out = el('div', { id: 'vote-result' });
    const form = el('form', { class: 'stack', id: 'vote-form' },
      el('div', { class: 'row' }, el('label', { for: 'vote-transition', text: 'transition' }), tr, accept),
      el('div', { class: 'row' }, voter, reason), proposal,
      el('div', { class: 'row' }, el('button', { type: 'submit', text: 'Vote' })), out);
    if (!voted.length) {
      replace(form, el('p', { class: 'muted', text: 'No transition of this machine takes votes.' }));
      return { form, pick() {} };
    }
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = { voter: voter.value.trim(), accept: accept.value === 'true' };
      if (reason.value.trim()) body.reason = reason.value.trim();
      if (proposal.value.trim()) body.proposal = proposal.value.trim();
      replace(out, el('span', { class: 'muted', text: 'voting…' }));
      const res = await api('PATCH', `machine/${enc(m)}/object/${enc(o)}/transition/${enc(tr.value)}`, { body: JSON.stringify(body) });
      if (res.status === 202) {
        replace(out, el('div', { class: 'result ok' }, `vote of ${res.json.voter} (${res.json.accept ? 'accept' : 'reject'}) on `,
          el('span', { class: 'mono', text: short(res.json.proposal) }), ' is in the log.'));
        onVoted();
      } else {
        replace(out, errorBox(res));
      }
    });
    return {
      form,
      pick(p) {
        tr.value = p.transition;
        proposal.value = p.proposal;
        voter.focus();
      },
    };
  }

  /* ------------------------------------------------------------ nodes */

  async function nodesPage(ctx) {
    const box = el('div', { id: 'nodes' });
    const stamp = el('span', { class: 'muted' });
    ctx.view.append(el('h1', {}, 'Nodes ', el('small', {}, stamp)), el('div', { class: 'panel' }, box));
    while (!ctx.signal.aborted) {
      const res = await api('GET', 'nodes', { signal: ctx.signal });
      if (res.status !== 200) {
        replace(box, errorBox(res, 'GET /nodes'));
      } else {
        const j = res.json;
        replace(box, table(['node', 'status', 'roles', 'http', 'partitions', 'lag#', 'voter', 'version', 'last seen', 'started'],
          j.nodes.map((n) => {
            const lag = Object.entries(n.lag || {});
            const total = lag.reduce((a, [, v]) => a + v, 0);
            return el('tr', { 'data-node': n.node },
              el('td', { class: 'mono', text: n.node }),
              el('td', {}, badge(n.status, n.status)),
              el('td', { text: [].concat(n.roles || []).join(', ') }),
              el('td', {}, n.http ? el('a', { class: 'mono', href: 'http://' + n.http + '/ui', text: n.http }) : ''),
              el('td', { class: 'mono', text: (n.partitions || []).join(', ') }),
              el('td', { class: 'num', title: lag.map(([p, v]) => `p${p}: ${v}`).join(', '), text: lag.length ? total : '' }),
              el('td', { text: n.voter || '' }),
              el('td', { class: 'mono', text: n.version || '' }),
              el('td', { text: ago(n.last_seen_ms) }),
              el('td', { class: 'muted', text: when(n.started) }));
          }), { id: 'nodes-table' }));
        stamp.textContent = `a node unheard of for ${duration(j.down_after_ms)} is down · refreshed ${new Date().toLocaleTimeString(undefined, { hour12: false })}`;
      }
      await sleep(2000, ctx.signal);
    }
  }

  /* ------------------------------------------------------------ start */

  function showTokenState() {
    document.getElementById('token-state').textContent = token() ? 'token set' : 'no token';
  }

  async function gatewayInfo() {
    const res = await api('GET', 'info');
    const box = document.getElementById('gateway-info');
    if (res.status === 200) box.textContent = `gateway ${res.json.node_id} (${res.json.roles}) · ${res.json.http}`;
    else box.textContent = 'gateway: ' + ((res.json && res.json.error && res.json.error.code) || res.status);
  }

  document.addEventListener('DOMContentLoaded', () => {
    const input = document.getElementById('token-input');
    input.value = token();
    document.getElementById('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (input.value.trim()) sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      else sessionStorage.removeItem(TOKEN_KEY);
      showTokenState();
      gatewayInfo();
      route();
    });
    document.getElementById('token-clear').addEventListener('click', () => {
      input.value = '';
      sessionStorage.removeItem(TOKEN_KEY);
      showTokenState();
      gatewayInfo();
      route();
    });
    showTokenState();
    gatewayInfo();
    window.addEventListener('hashchange', route);
    route();
  });
})();
