import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createSession, endSession, sessionCookie, SESSION_COOKIE, verifyToken, credentialsConfigured } from '../api/authenticate.ts';
import { ApiError } from '../api/errors.ts';
import * as control from '../api/control.ts';
import * as svc from '../api/service.ts';
import { identityAllows, type Identity } from '../auth/permissions.ts';
import { maskDeep } from '../log.ts';
import { html, raw, type Html } from './html.ts';

/**
 * The dashboard: server-rendered pages on the same data as the API (src/api/service.ts), masked the same
 * way. Every page reads without JavaScript (links and forms that GET or POST); htmx adds in-place paging and
 * search, uPlot draws the charts. No inline script or style: the Content-Security-Policy forbids both.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const ASSETS: Record<string, { file: string; type: string }> = {
  'app.css': { file: path.join(here, 'assets/app.css'), type: 'text/css; charset=utf-8' },
  'charts.js': { file: path.join(here, 'assets/charts.js'), type: 'text/javascript; charset=utf-8' },
  'htmx.min.js': { file: require.resolve('htmx.org/dist/htmx.min.js'), type: 'text/javascript; charset=utf-8' },
  'uPlot.iife.min.js': { file: path.join(path.dirname(require.resolve('uplot')), 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  'uPlot.min.css': { file: path.join(path.dirname(require.resolve('uplot')), 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
};


function layout(title: string, body: Html, identity: Identity | undefined, opts: { charts?: boolean } = {}): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"includeIndicatorCSS":false}'>
<title>${title} · segsync</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/app.css">${opts.charts ? raw('<link rel="stylesheet" href="/assets/uPlot.min.css">') : ''}
<script src="/assets/htmx.min.js" defer></script>${opts.charts ? raw('<script src="/assets/uPlot.iife.min.js" defer></script><script src="/assets/charts.js" defer></script>') : ''}
</head><body>
<header><strong>segsync</strong><nav><a href="/">Overview</a><a href="/records">Records</a><a href="/segments">Segments</a><a href="/events">Events</a><a href="/alerts">Alerts</a><a href="/api/v1/openapi.json">API</a></nav>
${identity ? html`<form method="post" action="/logout"><span class="muted">${identity.actor.type}:${identity.actor.id}</span> <button type="submit">Log out</button></form>` : ''}</header>
<main>${body}</main></body></html>`.value;
}

const statusOf = (s: string | null | undefined) => (s ? html`<span class="status status-${s}">${s}</span>` : html`<span class="muted">never ran</span>`);
const when = (d: Date | string | null | undefined) => (d ? html`${new Date(d)}` : html`<span class="muted">—</span>`);
const json = (v: unknown) => (v === null || v === undefined ? html`<span class="muted">—</span>` : html`<pre>${JSON.stringify(v, null, 1)}</pre>`);
const counts = (c: Record<string, unknown>) => Object.entries(c).filter(([, v]) => typeof v === 'number' && v > 0).map(([k, v]) => `${v} ${k}`).join(', ') || '—';

async function send(reply: FastifyReply, request: FastifyRequest, title: string, body: () => Promise<Html>, opts: { charts?: boolean } = {}) {
  try {
    return reply.type('text/html; charset=utf-8').send(layout(title, await body(), request.identity, opts));
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return reply.code(err.status).type('text/html; charset=utf-8').send(layout(title, html`<h1>${title}</h1><p class="error">${String(maskDeep(err.message))}</p><p><a href="/">Overview</a></p>`, request.identity));
  }
}

function runsTable(runs: Array<ReturnType<typeof svc.runSummary>>, next: string | null, base: string): Html {
  const more = next ? html`<div id="more"><a href="${base}cursor=${next}" hx-get="${base}cursor=${next}&fragment=runs" hx-target="#more" hx-swap="outerHTML">Older runs</a></div>` : '';
  return html`<div class="table"><table><thead><tr><th>Run</th><th>Status</th><th>Actor</th><th>Planned</th><th>Started</th><th>Finished</th><th>Note</th></tr></thead><tbody>
${runs.map((r) => html`<tr><td><a href="/runs/${r.id}">#${r.id}</a></td><td>${statusOf(r.status)}</td><td>${r.actor}</td><td>${counts(r.planned)}</td><td>${when(r.startedAt)}</td><td>${when(r.finishedAt)}</td><td>${r.reason ?? r.error ?? ''}</td></tr>`)}
</tbody></table></div>${more}`;
}

function chart(id: string, label: string, x: Array<Date | string>, series: Array<{ label: string; values: number[] }>, yLabel: string): Html {
  const spec = { x: x.map((d) => Math.round(new Date(d).getTime() / 1000)), series, yLabel };
  return html`<div class="chart" id="${id}" role="img" aria-label="${label}" data-chart="${JSON.stringify(spec)}"><p class="muted">${label} (the chart needs JavaScript; the table below has the figures)</p></div>`;
}

export async function registerDashboard(server: FastifyInstance, cp: svc.ControlPlane): Promise<void> {
  const page = { config: { permission: 'read' as const, kind: 'page' as const } };
  /** Masked as the API masks: maskDeep and the mappings' classified fields. */
  const masked = <T>(v: T): T => svc.shown(cp, v);
  const cache = new Map<string, Buffer>();

  server.get('/assets/:file', { config: { permission: 'public' } }, async (request, reply) => {
    const name = (request.params as { file: string }).file;
    const a = ASSETS[name];
    if (!a) return reply.code(404).type('text/plain').send('no such asset');
    let body = cache.get(name);
    if (!body) cache.set(name, (body = await readFile(a.file)));
    return reply.type(a.type).header('cache-control', 'public, max-age=3600').send(body);
  });

  server.get('/login', { config: { permission: 'public' } }, async (request, reply) => {
    const q = request.query as { next?: string; failed?: string };
    const next = q.next && q.next.startsWith('/') && !q.next.startsWith('//') ? q.next : '/';
    return reply.type('text/html; charset=utf-8').send(layout('Log in', html`<h1>Log in</h1>
${(await credentialsConfigured(cp.app())) ? '' : html`<p class="error">No credential is configured: create an API token (segsync tokens create) or set SEGSYNC_API_TOKEN.</p>`}
${q.failed ? html`<p class="error">That token was not accepted.</p>` : ''}
<form method="post" action="/login" class="decide"><input type="hidden" name="next" value="${next}">
<label>API token <input type="password" name="token" autocomplete="current-password" required></label><button type="submit">Log in</button></form>`, undefined));
  });

  server.post('/login', { config: { permission: 'public' } }, async (request, reply) => {
    const b = (request.body ?? {}) as { token?: string; next?: string };
    const next = b.next && b.next.startsWith('/') && !b.next.startsWith('//') ? b.next : '/';
    const identity = await verifyToken(String(b.token ?? ''), cp.app());
    if (!identity) return reply.redirect(`/login?failed=1&next=${encodeURIComponent(next)}`, 303);
    const s = createSession(identity, String(b.token));
    const secure = request.protocol === 'https' ? '; Secure' : '';
    return reply.header('set-cookie', `${SESSION_COOKIE}=${s.id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${s.maxAgeS}${secure}`).redirect(next, 303);
  });

  server.post('/logout', { config: { permission: 'public' } }, async (request, reply) => {
    const sid = sessionCookie(request);
    if (sid) endSession(sid);
    return reply.header('set-cookie', `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`).redirect('/login', 303);
  });

  server.get('/', page, (request, reply) => send(reply, request, 'Overview', async () => {
    const ms = masked(await svc.mappings(cp));
    return html`<h1>Mappings</h1>
${ms.filter((m) => m.waiting?.status === 'held').map((m) => html`<div class="card held"><strong>Run <a href="/runs/${m.waiting!.id}">#${m.waiting!.id}</a> of ${m.name} is held for approval</strong><br>${m.waiting!.reason ?? ''}</div>`)}
<div class="table"><table><thead><tr><th>Mapping</th><th>Last run</th><th>Status</th><th>Next run</th><th>Freshness</th><th>Waiting</th></tr></thead><tbody>
${ms.map((m) => html`<tr><td><a href="/mappings/${m.name}">${m.name}</a><br><span class="muted">${m.destination.connection}${m.destination.object ? ` / ${m.destination.object}` : ''} · ${m.mode}</span></td>
<td>${m.lastRun ? html`<a href="/runs/${m.lastRun.id}">#${m.lastRun.id}</a> ${when(m.lastRun.startedAt)}` : html`<span class="muted">none</span>`}</td>
<td>${statusOf(m.lastRun?.status)}</td><td>${m.schedule ? html`${when(m.nextRun)}<br><code>${m.schedule}</code>` : html`<span class="muted">not scheduled</span>`}</td>
<td>${m.freshness.at ? html`${when(m.freshness.at)}${m.freshness.stale ? html` <span class="error">stale (max ${m.maxStaleness})</span>` : ''}` : html`<span class="muted">${m.freshness.problem ?? 'unknown'}</span>`}</td>
<td>${m.waiting ? html`<a href="/runs/${m.waiting.id}">#${m.waiting.id}</a> ${statusOf(m.waiting.status)}` : ''}</td></tr>`)}
</tbody></table></div>`;
  }));

  server.get('/mappings/:name', page, async (request, reply) => {
    const name = (request.params as { name: string }).name;
    const q = request.query as { cursor?: string; fragment?: string };
    const base = `/mappings/${encodeURIComponent(name)}?`;
    if (q.fragment === 'runs') {
      const r = masked(await svc.runs(cp, { mapping: name, ...(q.cursor ? { cursor: q.cursor } : {}) }));
      return reply.type('text/html; charset=utf-8').send(runsTable(r.runs, r.nextCursor, base).value);
    }
    return send(reply, request, name, async () => {
      const [m] = masked(await svc.mappings(cp, name));
      const r = masked(await svc.runs(cp, { mapping: name, ...(q.cursor ? { cursor: q.cursor } : {}) }));
      const seg = masked(await svc.segments(cp, { mapping: name }));
      const ch = seg.changed?.runs ?? [];
      return html`<h1>${m!.name}</h1>${m!.description ? html`<p>${m!.description}</p>` : ''}
${m!.waiting ? html`<div class="card held">Run <a href="/runs/${m!.waiting.id}">#${m!.waiting.id}</a> is ${m!.waiting.status}: ${m!.waiting.reason ?? ''}</div>` : ''}
<dl class="kv"><dt>Source</dt><dd>${m!.source.model ?? '(sql)'} by ${m!.source.key}</dd><dt>Destination</dt><dd>${m!.destination.connection}${m!.destination.object ? ` / ${m!.destination.object}` : ''} (match on ${m!.destination.matchKey})</dd>
<dt>Mode</dt><dd>${m!.mode}</dd><dt>Schedule</dt><dd>${m!.schedule ?? 'none'}${m!.nextRun ? html`, next ${when(m!.nextRun)}` : ''}</dd>
<dt>Freshness</dt><dd>${when(m!.freshness.at)} ${m!.freshness.stale ? html`<span class="error">stale</span>` : ''} ${m!.freshness.problem ?? ''}</dd>
<dt>Fields</dt><dd>${m!.fields.map((f) => `${f.to} ← ${f.from ?? '(expr)'}`).join(', ')}</dd></dl>
<h2>Changed share per run</h2>
${ch.length ? chart('changed-chart', 'share of records each run changed', ch.map((c) => c.at), [{ label: 'changed %', values: ch.map((c) => (c.total ? Math.round((1000 * c.changed) / c.total) / 10 : 0)) }], '%') : html`<p class="muted">no planned run yet</p>`}
<h2>Runs</h2>${runsTable(r.runs, r.nextCursor, base)}`;
    }, { charts: true });
  });

  server.get('/runs/:id', page, async (request, reply) => {
    const raw_ = (request.params as { id: string }).id;
    const q = request.query as { cursor?: string; fragment?: string };
    if (!/^[1-9][0-9]{0,17}$/.test(raw_)) return send(reply, request, `Run ${raw_}`, async () => { throw new ApiError(404, 'NOT_FOUND', `no run "${raw_}"`); });
    const id = Number(raw_);
    const itemsBlock = async (mapping: string, cursor?: string) => {
      const it = masked(await svc.runItems(cp, id, cursor ? { cursor } : {}));
      const more = it.nextCursor ? html`<div id="more-items"><a href="/runs/${id}?cursor=${it.nextCursor}#items" hx-get="/runs/${id}?cursor=${it.nextCursor}&fragment=items" hx-target="#more-items" hx-swap="outerHTML">More items</a></div>` : '';
      return html`<div class="table"><table><thead><tr><th>Key</th><th>Op</th><th>State</th><th>Before</th><th>After</th><th>Error</th></tr></thead><tbody>
${it.items.map((i) => html`<tr><td><a href="/records?mapping=${mapping}&ref=${i.ref}">${i.key}</a></td><td>${i.op}</td><td>${statusOf(i.status)}</td><td>${json(i.before)}</td><td>${json(i.after)}</td><td>${i.errorCode ?? ''}</td></tr>`)}
</tbody></table></div>${more}`;
    };
    const transitionsBlock = async () => {
      const t = masked(await svc.runTransitions(cp, id));
      return t.transitions.length ? html`<div class="table"><table id="transitions"><thead><tr><th>From</th><th>To</th><th class="num">Records</th></tr></thead><tbody>${t.transitions.map((x) => html`<tr><td>${x.from}</td><td>${x.to}</td><td class="num">${x.count}</td></tr>`)}</tbody></table></div>`
        : html`<p class="muted" id="transitions">no record changes segment${t.field ? ` (${t.field})` : ''}</p>`;
    };
    if (q.fragment === 'transitions') return reply.type('text/html; charset=utf-8').send((await transitionsBlock()).value);
    if (q.fragment === 'items') return reply.type('text/html; charset=utf-8').send((await itemsBlock((await svc.runHead(cp, id)).mapping, q.cursor)).value);
    return send(reply, request, `Run ${id}`, async () => {
      const r = masked(await svc.run(cp, id, { transitions: false }));
      const full = (request.query as { transitions?: string }).transitions === '1';
      const items = await itemsBlock(r.mapping, q.cursor);
      const verdicts = r.guardrails?.verdicts ?? [];
      return html`<h1>Run #${r.id} of <a href="/mappings/${r.mapping}">${r.mapping}</a>: ${statusOf(r.status)}</h1>
${r.reason ? html`<p>${r.reason}</p>` : ''}${r.error && r.error !== r.reason ? html`<p class="error">${r.error}</p>` : ''}
${r.actions.includes('approve') && !(request.identity && identityAllows(request.identity, 'approve')) ? html`<div class="card held" id="held-note"><strong>Held for approval: nothing was sent.</strong> The evidence is below (guardrails). Someone with the approve permission (roles approver or admin) decides it.</div>` : ''}
${r.actions.includes('approve') && request.identity && identityAllows(request.identity, 'approve') ? html`<div class="card held"><strong>Held for approval: nothing was sent.</strong> The evidence is below (guardrails). Approving delivers exactly this plan; rejecting closes the run.
<form method="post" action="/runs/${r.id}/approve" class="decide" id="approve-form"><label>Why is this change right? <textarea name="reason" required rows="2"></textarea></label><button type="submit" name="decision" value="approve">Approve and deliver</button></form>
<form method="post" action="/runs/${r.id}/reject" class="decide" id="reject-form"><label>Why reject? <textarea name="reason" required rows="2"></textarea></label><button type="submit" name="decision" value="reject">Reject</button></form></div>` : ''}
<dl class="kv"><dt>Actor</dt><dd>${r.actor}</dd><dt>Started</dt><dd>${when(r.startedAt)}</dd><dt>Finished</dt><dd>${when(r.finishedAt)}</dd><dt>Destination</dt><dd>${r.destination}</dd><dt>Config</dt><dd><code>${r.configHash.slice(0, 12)}</code></dd><dt>Snapshot</dt><dd>${when(r.snapshotAt)}</dd></dl>
<h2>What changed</h2>
<div class="table"><table><thead><tr><th>Op</th><th class="num">Planned</th>${['delivered', 'failed', 'deferred', 'interrupted', 'in_doubt'].map((s) => html`<th class="num">${s}</th>`)}</tr></thead><tbody>
${['create', 'update', 'remove'].map((op) => html`<tr><td>${op}</td><td class="num">${r.items.find((i) => i.op === op)?.n ?? 0}</td>${['delivered', 'failed', 'deferred', 'interrupted', 'in_doubt'].map((s) => html`<td class="num">${r.outcomes.find((o) => o.op === op && o.status === s)?.n ?? 0}</td>`)}</tr>`)}
</tbody></table></div>
<p class="muted">unchanged: ${String(r.planned.unchanged ?? 0)}${r.planned.dead ? `, dead (not sent): ${String(r.planned.dead)}` : ''}</p>
${r.transitionField ? html`<h2>Why: segment transitions (${r.transitionField})</h2>${full ? await transitionsBlock() : html`<div hx-get="/runs/${r.id}?fragment=transitions" hx-trigger="load" hx-swap="outerHTML"><a href="/runs/${r.id}?transitions=1#transitions">Show the segment transitions</a> <span class="muted">(a pass over the run's planned items)</span></div>`}` : ''}
<h2>Guardrails</h2>
${verdicts.length ? html`<div class="table"><table id="verdicts"><thead><tr><th>Rule</th><th>Verdict</th><th class="num">Value</th><th class="num">Threshold</th><th class="num">Baseline</th><th>Detail</th></tr></thead><tbody>
${verdicts.map((v) => html`<tr><td>${v.rule}</td><td class="verdict-${v.verdict}">${v.verdict}${v.allowed ? ' (allowed)' : ''}</td><td class="num">${v.value ?? '—'}</td><td class="num">${v.threshold ?? '—'}</td><td class="num">${v.baseline ?? '—'}</td><td>${v.detail}</td></tr>`)}
</tbody></table></div>` : html`<p class="muted">no verdicts recorded</p>`}
${r.guardrails?.examples ? html`<h3>Examples of moved records</h3>${json(r.guardrails.examples)}` : ''}
${r.errors.length ? html`<h2>Errors by code</h2><div class="table"><table><thead><tr><th>Code</th><th class="num">Records</th><th>Example</th></tr></thead><tbody>${r.errors.map((e) => html`<tr><td><code>${e.code}</code></td><td class="num">${e.n}</td><td>${e.example ?? ''}</td></tr>`)}</tbody></table></div>` : ''}
<h2>History</h2><div class="table"><table><thead><tr><th>At</th><th>From</th><th>To</th><th>By</th><th>Why</th></tr></thead><tbody>
${r.history.map((h) => html`<tr><td>${when(h.at)}</td><td>${h.from ?? '—'}</td><td>${statusOf(h.to)}</td><td>${h.actor}</td><td>${h.reason ?? ''}</td></tr>`)}</tbody></table></div>
<h2 id="items">Planned items</h2>${items}`;
    });
  });

  const decide = (action: 'approve' | 'reject') => async (request: FastifyRequest, reply: FastifyReply) => {
    const id = Number((request.params as { id: string }).id);
    const reason = String((request.body as { reason?: string } | undefined)?.reason ?? '').trim();
    if (!Number.isSafeInteger(id) || id < 1) return reply.code(404).send('no such run');
    try {
      if (!reason) throw new ApiError(400, 'BAD_REQUEST', 'a reason is required');
      if (action === 'approve') await svc.approve(cp, id, reason, true, request.identity!);
      else await svc.reject(cp, id, reason, request.identity!);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      return reply.code(err.status).type('text/html; charset=utf-8').send(layout(`Run ${id}`, html`<h1>Run #${id}</h1><p class="error">${String(maskDeep(err.message))}</p><p><a href="/runs/${id}">Back to the run</a></p>`, request.identity));
    }
    return reply.redirect(`/runs/${id}`, 303);
  };
  server.post('/runs/:id/approve', { config: { permission: 'approve', kind: 'page' } }, decide('approve'));
  server.post('/runs/:id/reject', { config: { permission: 'approve', kind: 'page' } }, decide('reject'));

  // The search form posts the key (it never lands in a URL); links to a record carry a sealed ref (src/pii/refs.ts).
  const records = async (request: FastifyRequest, reply: FastifyReply) => {
    const q = { ...(request.query as object), ...(request.method === 'POST' ? (request.body as object) ?? {} : {}) } as { mapping?: string; key?: string; ref?: string; fragment?: string };
    if (!q.key && q.ref) q.key = q.ref;
    const app = cp.app();
    const names = app.config.mappings.map((m) => m.value.name);
    const result = async (): Promise<Html> => {
      if (!q.key) return html`<p class="muted">Enter a record key (the source key, e.g. a user id).</p>`;
      try {
        const t = masked(await svc.record(cp, q.mapping || names[0] || '', q.key));
        return html`<h2>${t.key} in ${t.mapping}</h2>
${t.delivered ? html`<div class="card"><strong>Now:</strong> ${t.delivered.removedAt ? 'removed' : 'delivered'} ${when(t.delivered.deliveredAt)} by run <a href="/runs/${t.delivered.lastRunId}">#${t.delivered.lastRunId}</a>, destination id <code>${t.delivered.destinationId ?? '—'}</code>; read back: <strong>${t.delivered.reconcileStatus ?? 'not yet'}</strong>${t.delivered.dead ? html` <span class="error">dead</span>` : ''}${t.delivered.failCount ? html` <span class="error">failing ${t.delivered.failCount} run(s): ${t.delivered.lastErrorCode}</span>` : ''}${json(t.delivered.payload)}</div>` : html`<p class="muted">never confirmed delivered</p>`}
<h3>What each run sent</h3><div class="table"><table id="timeline"><thead><tr><th>Run</th><th>Op</th><th>Before</th><th>After</th><th>Receipt</th><th>Request id</th></tr></thead><tbody>
${t.runs.map((e) => html`<tr><td><a href="/runs/${e.runId}">#${e.runId}</a><br>${when(e.startedAt)}</td><td>${e.op ?? '—'}</td><td>${json(e.before)}</td><td>${json(e.after)}</td><td>${e.receipt ? html`${statusOf(e.receipt.status)}${e.receipt.errorCode ? html`<br><code>${e.receipt.errorCode}</code> ${e.receipt.errorMessage ?? ''}` : ''}` : html`<span class="muted">no receipt (${e.runStatus})</span>`}</td><td><code>${e.receipt?.requestId ?? '—'}</code></td></tr>`)}
</tbody></table></div>
<h3>Read back</h3>${t.readBacks.length ? html`<div class="table"><table><thead><tr><th>At</th><th>Verdict</th><th>Drifted fields</th><th>Detail</th></tr></thead><tbody>${t.readBacks.map((b) => html`<tr><td>${when(b.at)}</td><td>${b.status}</td><td>${(b.driftedFields ?? []).join(', ')}</td><td>${b.detail ?? ''}</td></tr>`)}</tbody></table></div>` : html`<p class="muted">never read back</p>`}
<h3>Segment history</h3>${t.segments?.length ? html`<div class="table"><table id="segment-history"><thead><tr><th>Snapshot</th><th>Segment</th><th class="num">R</th><th class="num">F</th><th class="num">M</th></tr></thead><tbody>${t.segments.map((s) => html`<tr><td>${when(s.snapshotAt)}</td><td>${s.segment}</td><td class="num">${s.recency ?? ''}</td><td class="num">${s.frequency ?? ''}</td><td class="num">${s.monetary ?? ''}</td></tr>`)}</tbody></table></div>` : html`<p class="muted">no segment history for this key</p>`}`;
      } catch (err) {
        if (err instanceof ApiError) return html`<p class="error">${String(maskDeep(err.message))}</p>`;
        throw err;
      }
    };
    if (q.fragment === 'result') return reply.type('text/html; charset=utf-8').send((await result()).value);
    // The key searched for is echoed back into the form only when it is no personal data (a user id, not an address).
    const keyClass = app.config.mappings.find((m) => m.value.name === (q.mapping || names[0]))?.value.source.key_pii;
    const keyShown = q.key && (keyClass === undefined || keyClass === 'none') && masked(q.key) === q.key ? q.key : '';
    return send(reply, request, 'Record debugger', async () => html`<h1>Record debugger</h1>
<form method="post" action="/records" class="decide" id="record-search" hx-post="/records?fragment=result" hx-target="#result" hx-push-url="false">
<label>Mapping <select name="mapping">${names.map((n) => html`<option value="${n}"${raw(n === q.mapping ? ' selected' : '')}>${n}</option>`)}</select></label>
<label>Key <input name="key" value="${q.ref ? '' : keyShown}" required></label><button type="submit">Search</button></form>
<div id="result">${await result()}</div>`);
  };
  server.get('/records', page, records);
  server.post('/records', page, records);

  server.get('/segments', page, (request, reply) => send(reply, request, 'Segments', async () => {
    const q = request.query as { mapping?: string };
    const s = masked(await svc.segments(cp, q.mapping ? { mapping: q.mapping } : {}));
    const sizes = s.sizes;
    const names = sizes ? Object.keys(sizes.segments) : [];
    return html`<h1>Segment history</h1>
${sizes && sizes.snapshots.length ? html`<h2>Customers per segment, per snapshot</h2>${chart('sizes-chart', 'customers per segment over time', sizes.snapshots, names.map((n) => ({ label: n, values: sizes.segments[n]! })), 'customers')}
<div class="table"><table id="sizes"><thead><tr><th>Snapshot</th>${names.map((n) => html`<th class="num">${n}</th>`)}</tr></thead><tbody>
${sizes.snapshots.slice(-12).map((t, i, arr) => { const k = sizes.snapshots.length - arr.length + i; return html`<tr><td>${when(t)}</td>${names.map((n) => html`<td class="num">${sizes.segments[n]![k]}</td>`)}</tr>`; })}
</tbody></table></div>` : html`<p class="muted">no segment history model (rfm_segments_hist) in schema ${cp.app().config.settings.models.schema}</p>`}
${s.flows ? html`<h2>Transitions ${when(s.flows.from)} → ${when(s.flows.to)}</h2><div class="table"><table id="flows"><thead><tr><th>From</th><th>To</th><th class="num">Customers</th></tr></thead><tbody>
${s.flows.flows.filter((f) => f.from !== f.to).slice(0, 40).map((f) => html`<tr><td>${f.from}</td><td>${f.to}</td><td class="num">${f.count}</td></tr>`)}</tbody></table></div>
<p class="muted">stayed in their segment: ${s.flows.flows.filter((f) => f.from === f.to).reduce((a, f) => a + f.count, 0)}</p>` : ''}
${s.changed?.runs.length ? html`<h2>Changed share per run of ${s.changed.mapping}</h2>${chart('changed-chart', 'share of records each run changed', s.changed.runs.map((c) => c.at), [{ label: 'changed %', values: s.changed.runs.map((c) => (c.total ? Math.round((1000 * c.changed) / c.total) / 10 : 0)) }], '%')}` : ''}`;
  }, { charts: true }));

  server.get('/events', page, (request, reply) => send(reply, request, 'Events', async () => {
    const q = request.query as { mapping?: string; severity?: string; cursor?: string };
    const e = masked(await svc.events(cp, { ...(q.mapping ? { mapping: q.mapping } : {}), ...(q.severity ? { severity: q.severity } : {}), ...(q.cursor ? { cursor: q.cursor } : {}) }));
    return html`<h1>Events</h1>
<p class="muted">The events that alert people are grouped into incidents: <a href="/alerts">open incidents and silences</a>.</p>
<form method="get" action="/events"><label>Severity <select name="severity"><option value="">any</option>${svc.SEVERITIES.map((s) => html`<option${raw(s === q.severity ? ' selected' : '')}>${s}</option>`)}</select></label> <button type="submit">Filter</button></form>
<div class="table"><table id="events"><thead><tr><th>At</th><th>Severity</th><th>Kind</th><th>Mapping</th><th>Run</th><th>Message</th></tr></thead><tbody>
${e.events.map((ev) => html`<tr><td>${when(ev.at)}</td><td class="status-${ev.severity === 'info' ? 'succeeded' : 'failed'}">${ev.severity}</td><td>${ev.kind}</td><td>${ev.mapping ? html`<a href="/mappings/${ev.mapping}">${ev.mapping}</a>` : ''}</td><td>${ev.runId ? html`<a href="/runs/${ev.runId}">#${ev.runId}</a>` : ''}</td><td>${ev.message}</td></tr>`)}
</tbody></table></div>${e.nextCursor ? html`<a href="/events?cursor=${e.nextCursor}${q.severity ? `&severity=${q.severity}` : ''}">Older events</a>` : ''}`;
  }));

  // Read-only: silences are added and expired with `segsync silence` or POST /api/v1/silences (permission silence).
  server.get('/alerts', page, (request, reply) => send(reply, request, 'Alerts', async () => {
    const a = masked(await control.alerts(cp, {}));
    const s = masked(await control.silences(cp, {}));
    const subject = (i: (typeof a.incidents)[number]) => i.mapping ? html`<a href="/mappings/${i.mapping}">${i.mapping}</a>` : (i.labels.monitor ?? i.labels.destination ?? i.labels.model ?? '');
    return html`<h1>Alerts</h1>
<h2>Open incidents</h2>
${a.incidents.length ? html`<div class="table"><table id="incidents"><thead><tr><th>Incident</th><th>Kind</th><th>Subject</th><th>Severity</th><th>State</th><th>Since</th><th>Events</th><th>Run</th><th>Deliveries</th><th>Message</th></tr></thead><tbody>
${a.incidents.map((i) => html`<tr><td>${i.id}</td><td>${i.kind}</td><td>${subject(i)}</td><td class="status-${i.severity === 'info' ? 'succeeded' : 'failed'}">${i.severity}</td><td>${i.state}${i.heldBy ? html`<br><span class="muted">held by ${i.heldBy}</span>` : ''}</td>
<td>${when(i.firstAt)}</td><td>${i.events}</td><td>${i.lastRunId ? html`<a href="/runs/${i.lastRunId}">#${i.lastRunId}</a>` : ''}</td>
<td>${i.deliveries.length ? i.deliveries.map((d) => html`<span class="status status-${d.status === 'sent' ? 'succeeded' : d.status === 'failed' ? 'failed' : 'held'}">${d.channel} ${d.action}: ${d.status}${d.status === 'sent' ? '' : ` (${d.attempts})`}</span> `) : html`<span class="muted">none yet</span>`}</td><td>${i.lastMessage}</td></tr>`)}
</tbody></table></div>` : html`<p id="incidents" class="muted">No open incidents.</p>`}
${a.failed.length ? html`<h2>Failed deliveries</h2><div class="table"><table id="failed"><thead><tr><th>Delivery</th><th>Incident</th><th>Channel</th><th>Action</th><th>Attempts</th><th>Error</th></tr></thead><tbody>
${a.failed.map((d) => html`<tr><td>${d.id}</td><td>${d.incident ?? ''}</td><td>${d.channel}</td><td>${d.action}</td><td>${d.attempts}</td><td>${d.lastError ?? ''}</td></tr>`)}</tbody></table></div>` : ''}
<h2>Silences in force</h2>
${s.silences.length ? html`<div class="table"><table id="silences"><thead><tr><th>Silence</th><th>Matchers</th><th>Until</th><th>Author</th><th>Comment</th></tr></thead><tbody>
${s.silences.map((x) => html`<tr><td>${x.id}</td><td><code>${x.matchers.join(', ')}</code></td><td>${when(x.endsAt)}</td><td>${x.author}</td><td>${x.comment}</td></tr>`)}</tbody></table></div>` : html`<p id="silences" class="muted">No silences in force.</p>`}
<p class="muted">Silences are added and ended with <code>segsync silence add|expire</code> or <code>POST /api/v1/silences</code> (permission silence). <a href="/events">All events</a></p>`;
  }));
}
