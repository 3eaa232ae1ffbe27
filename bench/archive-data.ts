// The benchmark disk of issue 11, generated: random blobs (incompressible),
// ~20k small text files in nested directories, and large application logs
// (compressible; see "logs" below). At scale 1 it is the measured 1.09 GB disk: 350 MiB of
// blobs, 20,040 small files, 600 MiB of logs. Deterministic (seeded), so two
// runs at one scale archive the same bytes.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { prng } from '../test/support/prng.js';

export { prng };

const MiB = 1024 * 1024;

// Text is Zipf-distributed over a vocabulary of made-up words (as natural
// language is), and log lines come from a fixed set of message templates
// with variable fields (as application logs do): uniformly random words
// would be neither text nor logs.
const SYLLABLES = 'ka to ri mu se na lo pe vi da ne so ru mi te ba go hu ze fa'.split(' ');
function vocabulary(rnd: () => number, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = 1 + Math.floor(rnd() * 3) + (i > 200 ? 1 : 0);
    let w = '';
    for (let j = 0; j < len; j++) w += SYLLABLES[Math.floor(rnd() * SYLLABLES.length)]!;
    out.push(w);
  }
  return out;
}

/** Picks ranks 0..n-1 with probability ~ 1/(rank+1) (Zipf, s = 1). */
function zipf(rnd: () => number, n: number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) cdf[i] = sum += 1 / (i + 1);
  return () => {
    const x = rnd() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

function textMaker(rnd: () => number): (words: number) => string {
  const vocab = vocabulary(rnd, 5000);
  const pick = zipf(rnd, vocab.length);
  return (n) => {
    const parts: string[] = [];
    for (let i = 0; i < n; i++) {
      let w = vocab[pick()]!;
      const end = rnd() < 0.07;
      if (parts.length === 0 || parts[parts.length - 1]!.endsWith('.')) w = w[0]!.toUpperCase() + w.slice(1);
      parts.push(end ? `${w}.` : w);
      if (end && rnd() < 0.2) parts.push('\n\n');
    }
    return parts.join(' ').replace(/ ?\n\n ?/g, '\n\n');
  };
}

// ---------------------------------------------------------------- logs
//
// Application logs as a typical web application writes them, in two kinds
// of files:
// - access logs in nginx's "combined" format plus timings (client address,
//   time, request line with the route's path, ids and query, status, body
//   size, referrer, user agent, request and upstream time);
// - the application's own log, request by request as Rails tags it: every
//   line of one request carries that request's random id (a UUID); a request
//   logs its start, the controller action with parameters, 0-6 SQL queries
//   with their timings, sometimes a cache or job line, and its completion
//   with the status and timings; about 1 in 60 requests fails with an
//   exception and its backtrace (10-30 frames from the application, its gems
//   and the framework). Background lines (job workers, heartbeats, GC) come
//   in between.
// Clients, users, objects, routes and user agents come from pools with a
// few busy ones (Zipf), as real traffic does; request ids, timings, sizes
// and query values are random. Nothing here is tuned towards a compression
// ratio: the fields are what such logs hold, and the ratios are measured
// and reported in docs/benchmarks.md.

interface Route {
  method: string;
  path: string;
  controller: string;
  action: string;
  /** The route's path with `:id` style parameters filled from the object pool. */
  params: string[];
}

const ROUTES: Route[] = [
  { method: 'GET', path: '/', controller: 'HomeController', action: 'index', params: [] },
  { method: 'GET', path: '/projects/:project/issues', controller: 'IssuesController', action: 'index', params: ['project'] },
  { method: 'GET', path: '/projects/:project/issues/:id', controller: 'IssuesController', action: 'show', params: ['project', 'id'] },
  { method: 'POST', path: '/projects/:project/issues', controller: 'IssuesController', action: 'create', params: ['project'] },
  { method: 'PATCH', path: '/projects/:project/issues/:id', controller: 'IssuesController', action: 'update', params: ['project', 'id'] },
  { method: 'GET', path: '/projects/:project/wiki/:page', controller: 'WikiController', action: 'show', params: ['project', 'page'] },
  { method: 'GET', path: '/users/:id', controller: 'UsersController', action: 'show', params: ['id'] },
  { method: 'GET', path: '/api/v1/orders', controller: 'Api::V1::OrdersController', action: 'index', params: [] },
  { method: 'GET', path: '/api/v1/orders/:id', controller: 'Api::V1::OrdersController', action: 'show', params: ['id'] },
  { method: 'POST', path: '/api/v1/orders', controller: 'Api::V1::OrdersController', action: 'create', params: [] },
  { method: 'GET', path: '/api/v1/search', controller: 'Api::V1::SearchController', action: 'index', params: [] },
  { method: 'POST', path: '/login', controller: 'SessionsController', action: 'create', params: [] },
  { method: 'GET', path: '/attachments/:id/download', controller: 'AttachmentsController', action: 'download', params: ['id'] },
  { method: 'GET', path: '/healthz', controller: 'HealthController', action: 'show', params: [] },
];
const STATIC = ['/assets/application-5f2c1e.js', '/assets/application-9ab3d0.css', '/favicon.ico', '/assets/logo-3c1f.svg', '/robots.txt'];
const WIKI_PAGES = ['Installation', 'FAQ', 'Release_notes', 'Roadmap', 'Getting_started', 'Deployment', 'Backups', 'API'];
const PROJECTS = ['billing', 'web', 'mobile', 'infra', 'docs', 'support', 'data', 'ops', 'design', 'growth'];
const AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.43 Mobile Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 Edg/119.0.2151.97',
  'curl/8.4.0',
  'python-requests/2.31.0',
  'Go-http-client/1.1',
  'kube-probe/1.28',
  'Prometheus/2.48.0',
  'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
];
const TABLES = ['users', 'projects', 'issues', 'journals', 'orders', 'order_items', 'attachments', 'wiki_pages', 'members', 'settings'];
const MODELS: Record<string, string> = {
  users: 'User',
  projects: 'Project',
  issues: 'Issue',
  journals: 'Journal',
  orders: 'Order',
  order_items: 'OrderItem',
  attachments: 'Attachment',
  wiki_pages: 'WikiPage',
  members: 'Member',
  settings: 'Setting',
};
const SEARCH_WORDS = ['invoice', 'refund', 'login', 'error', 'timeout', 'export', 'backup', 'upgrade', 'password', 'billing', 'api', 'slow'];
const FRAMEWORK_FRAMES = [
  "activerecord-7.1.2/lib/active_record/connection_adapters/postgresql_adapter.rb:894:in 'exec_params'",
  "activerecord-7.1.2/lib/active_record/connection_adapters/abstract_adapter.rb:1028:in 'block in log'",
  "activesupport-7.1.2/lib/active_support/notifications/instrumenter.rb:58:in 'instrument'",
  "activerecord-7.1.2/lib/active_record/relation.rb:1031:in 'load'",
  "actionpack-7.1.2/lib/action_controller/metal/basic_implicit_render.rb:6:in 'send_action'",
  "actionpack-7.1.2/lib/abstract_controller/base.rb:224:in 'process_action'",
  "actionpack-7.1.2/lib/action_controller/metal/rendering.rb:165:in 'process_action'",
  "activesupport-7.1.2/lib/active_support/callbacks.rb:121:in 'block in run_callbacks'",
  "actionpack-7.1.2/lib/abstract_controller/callbacks.rb:259:in 'process_action'",
  "actionpack-7.1.2/lib/action_controller/metal/rescue.rb:25:in 'process_action'",
  "actionpack-7.1.2/lib/action_dispatch/routing/route_set.rb:49:in 'dispatch'",
  "actionpack-7.1.2/lib/action_dispatch/journey/router.rb:35:in 'block in serve'",
  "rack-3.0.8/lib/rack/tempfile_reaper.rb:20:in 'call'",
  "rack-3.0.8/lib/rack/etag.rb:29:in 'call'",
  "actionpack-7.1.2/lib/action_dispatch/middleware/cookies.rb:689:in 'call'",
  "actionpack-7.1.2/lib/action_dispatch/middleware/callbacks.rb:29:in 'block in call'",
  "railties-7.1.2/lib/rails/rack/logger.rb:37:in 'call_app'",
  "puma-6.4.0/lib/puma/request.rb:99:in 'block in handle_request'",
  "puma-6.4.0/lib/puma/thread_pool.rb:155:in 'block in spawn_thread'",
];
const APP_FRAMES = [
  "app/models/order.rb:142:in 'charge!'",
  "app/models/issue.rb:318:in 'validate_status_transition'",
  "app/services/payment_gateway.rb:57:in 'post_charge'",
  "app/services/search/query_builder.rb:88:in 'build'",
  "app/controllers/api/v1/orders_controller.rb:41:in 'create'",
  "app/controllers/issues_controller.rb:127:in 'update'",
  "app/controllers/application_controller.rb:66:in 'require_login'",
  "lib/redmine/wiki_formatting/textile/formatter.rb:219:in 'render_page'",
];
const ERRORS = [
  'ActiveRecord::StatementInvalid (PG::QueryCanceled: ERROR:  canceling statement due to statement timeout',
  'Net::ReadTimeout (Net::ReadTimeout with #<TCPSocket:(closed)>)',
  'ActiveRecord::RecordNotFound (Couldn\'t find Order with \'id\'=#ID)',
  'NoMethodError (undefined method `name\' for nil:NilClass)',
  'ActiveRecord::StaleObjectError (Attempted to update a stale object: Issue.)',
  'Redis::CannotConnectError (Error connecting to Redis on redis:6379 (Errno::ECONNREFUSED))',
];
const JOBS = ['MailDeliveryJob', 'ReindexSearchJob', 'ExportCsvJob', 'WebhookDeliveryJob', 'CleanupSessionsJob'];

interface LogPools {
  ip: () => string;
  user: () => number;
  object: () => number;
  agent: () => string;
  route: () => Route;
}

function logPools(rnd: () => number): LogPools {
  const ips = Array.from({ length: 3000 }, () =>
    rnd() < 0.7
      ? `${1 + Math.floor(rnd() * 222)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}`
      : `10.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}`,
  );
  const ipPick = zipf(rnd, ips.length);
  const userPick = zipf(rnd, 20000);
  const objectPick = zipf(rnd, 500000);
  const agentPick = zipf(rnd, AGENTS.length);
  const routePick = zipf(rnd, ROUTES.length);
  return { ip: () => ips[ipPick()]!, user: () => 1 + userPick(), object: () => 1 + objectPick(), agent: () => AGENTS[agentPick()]!, route: () => ROUTES[routePick()]! };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** nginx's time: 01/Jan/2025:00:00:01 +0000 */
function clf(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** A request's concrete path and query, e.g. /projects/billing/issues/4711?page=2. */
function requestPath(r: () => number, route: Route, p: LogPools): { path: string; params: string } {
  const values: string[] = [];
  let path = route.path;
  for (const name of route.params) {
    const v = name === 'project' ? PROJECTS[Math.floor(r() * PROJECTS.length)]! : name === 'page' ? WIKI_PAGES[Math.floor(r() * WIKI_PAGES.length)]! : String(p.object());
    path = path.replace(`:${name}`, v);
    values.push(`"${name}"=>"${v}"`);
  }
  let query = '';
  if (route.action === 'index' && r() < 0.5) {
    const page = 1 + Math.floor(r() * 20);
    query = route.controller.includes('Search') ? `?q=${SEARCH_WORDS[Math.floor(r() * SEARCH_WORDS.length)]}&page=${page}` : `?page=${page}&per_page=25`;
    values.push(`"page"=>"${page}"`);
  }
  return { path: path + query, params: values.length ? `{${values.join(', ')}}` : '{}' };
}

function uuid(r: () => number): string {
  const h = (n: number) => Array.from({ length: n }, () => Math.floor(r() * 16).toString(16)).join('');
  return `${h(8)}-${h(4)}-4${h(3)}-${'89ab'[Math.floor(r() * 4)]}${h(3)}-${h(12)}`;
}

/** Lines of the application log for `bytes`, starting at `startMs`. */
function appLog(rnd: () => number, p: LogPools, startMs: number, bytes: number): { text: string; endMs: number } {
  const lines: string[] = [];
  let size = 0;
  let t = startMs;
  const push = (level: string, tag: string, msg: string) => {
    t += Math.floor(rnd() * 3);
    const line = `${new Date(t).toISOString()} ${level.padEnd(5)} [${tag}] ${msg}\n`;
    lines.push(line);
    size += line.length;
  };
  while (size < bytes) {
    t += Math.floor(rnd() * 40);
    const x = rnd();
    if (x < 0.08) {
      // background work between requests
      const job = JOBS[Math.floor(rnd() * JOBS.length)]!;
      const jid = uuid(rnd);
      push('INFO', `ActiveJob`, `[${job}] [${jid}] Performing ${job} (Job ID: ${jid}) from Sidekiq(default) enqueued at ${new Date(t - Math.floor(rnd() * 60000)).toISOString()}`);
      push('INFO', `ActiveJob`, `[${job}] [${jid}] Performed ${job} (Job ID: ${jid}) from Sidekiq(default) in ${(rnd() * 3000).toFixed(2)}ms`);
      continue;
    }
    if (x < 0.1) {
      push('DEBUG', 'puma', `pool status: busy=${Math.floor(rnd() * 5)} running=5 backlog=${Math.floor(rnd() * 3)} max_threads=5`);
      continue;
    }
    const rid = uuid(rnd);
    const route = p.route();
    const { path, params } = requestPath(rnd, route, p);
    const ip = p.ip();
    push('INFO', rid, `Started ${route.method} "${path}" for ${ip} at ${new Date(t).toISOString().replace('T', ' ').slice(0, 19)} +0000`);
    push('INFO', rid, `Processing by ${route.controller}#${route.action} as ${route.path.startsWith('/api') ? 'JSON' : 'HTML'}`);
    push('INFO', rid, `  Parameters: ${params}`);
    const user = p.user();
    let db = 0;
    const queries = route.controller === 'HealthController' ? 0 : 1 + Math.floor(rnd() * 6);
    for (let q = 0; q < queries; q++) {
      const table = q === 0 ? 'users' : TABLES[Math.floor(rnd() * TABLES.length)]!;
      const ms = rnd() * (rnd() < 0.05 ? 400 : 8);
      db += ms;
      const id = q === 0 ? user : p.object();
      push(
        'DEBUG',
        rid,
        `  ${MODELS[table]} Load (${ms.toFixed(1)}ms)  SELECT "${table}".* FROM "${table}" WHERE "${table}"."id" = $1 LIMIT $2  [["id", ${id}], ["LIMIT", 1]]`,
      );
    }
    if (rnd() < 0.15) push('DEBUG', rid, `  Cache ${rnd() < 0.7 ? 'read' : 'write'} views/${route.controller.toLowerCase().replace(/::/g, '/')}/${route.action}/${p.object()}`);
    t += Math.floor(rnd() * 30);
    if (rnd() < 1 / 60) {
      const err = ERRORS[Math.floor(rnd() * ERRORS.length)]!.replace('#ID', String(p.object()));
      push('ERROR', rid, '');
      push('FATAL', rid, `${err}):`);
      const frames = 10 + Math.floor(rnd() * 20);
      const app = 1 + Math.floor(rnd() * 3);
      const start = Math.floor(rnd() * APP_FRAMES.length);
      for (let f = 0; f < frames; f++) {
        const frame = f < app ? APP_FRAMES[(start + f) % APP_FRAMES.length]! : FRAMEWORK_FRAMES[(f - app) % FRAMEWORK_FRAMES.length]!;
        push('FATAL', rid, `${f < app ? '' : '/usr/local/bundle/gems/'}${frame}`);
      }
      push('INFO', rid, `Completed 500 Internal Server Error in ${Math.floor(50 + rnd() * 2000)}ms (ActiveRecord: ${db.toFixed(1)}ms | Allocations: ${Math.floor(rnd() * 90000)})`);
      continue;
    }
    const status = route.method === 'POST' ? (rnd() < 0.9 ? '302 Found' : '422 Unprocessable Entity') : rnd() < 0.97 ? '200 OK' : rnd() < 0.5 ? '404 Not Found' : '304 Not Modified';
    const views = rnd() * 60;
    push('INFO', rid, `Completed ${status} in ${Math.floor(db + views + rnd() * 20)}ms (Views: ${views.toFixed(1)}ms | ActiveRecord: ${db.toFixed(1)}ms | Allocations: ${Math.floor(rnd() * 60000)})`);
  }
  return { text: lines.join(''), endMs: t };
}

/** Lines of the nginx access log for `bytes`. */
function accessLog(rnd: () => number, p: LogPools, startMs: number, bytes: number): { text: string; endMs: number } {
  const lines: string[] = [];
  let size = 0;
  let t = startMs;
  while (size < bytes) {
    t += Math.floor(rnd() * 25);
    let path: string;
    let method = 'GET';
    let status: number;
    let body: number;
    if (rnd() < 0.35) {
      path = STATIC[Math.floor(rnd() * STATIC.length)]!;
      status = rnd() < 0.6 ? 304 : 200;
      body = status === 304 ? 0 : 1000 + Math.floor(rnd() * 400000);
    } else {
      const route = p.route();
      method = route.method;
      path = requestPath(rnd, route, p).path;
      status = method === 'POST' ? (rnd() < 0.9 ? 302 : 422) : rnd() < 0.96 ? 200 : [404, 500, 502, 304][Math.floor(rnd() * 4)]!;
      body = Math.floor(rnd() * 60000);
    }
    const rt = rnd() * (rnd() < 0.03 ? 3 : 0.2);
    const referrer = rnd() < 0.6 ? '-' : `https://tracker.example.com${ROUTES[Math.floor(rnd() * 3)]!.path.replace(':project', PROJECTS[Math.floor(rnd() * PROJECTS.length)]!)}`;
    const line = `${p.ip()} - - [${clf(t)}] "${method} ${path} HTTP/1.1" ${status} ${body} "${referrer}" "${p.agent()}" rt=${rt.toFixed(3)} uct=0.00${Math.floor(rnd() * 10)} urt=${(rt * 0.97).toFixed(3)}\n`;
    lines.push(line);
    size += line.length;
  }
  return { text: lines.join(''), endMs: t };
}

export interface DataSetFacts {
  scale: number;
  blobBytes: number;
  smallFiles: number;
  smallBytes: number;
  logBytes: number;
  totalBytes: number;
}

/** Writes the data set under `dir` (created). */
export async function generateDataSet(dir: string, scale: number, seed = 11): Promise<DataSetFacts> {
  const rnd = prng(seed);
  await mkdir(dir, { recursive: true });
  // Random blobs: 350 MiB at scale 1, in files of up to 32 MiB.
  const blobTotal = Math.round(350 * MiB * scale);
  await mkdir(join(dir, 'blobs'));
  let blobBytes = 0;
  for (let i = 0; blobBytes < blobTotal; i++) {
    const size = Math.min(blobTotal - blobBytes, Math.floor((4 + rnd() * 28) * MiB));
    await writeFile(join(dir, 'blobs', `blob-${String(i).padStart(3, '0')}.bin`), randomBytes(size));
    blobBytes += size;
  }
  // Small text files: 20,040 at scale 1, 40 per directory, two levels deep.
  const prose = textMaker(rnd);
  const smallFiles = Math.max(1, Math.round(20040 * scale));
  let smallBytes = 0;
  for (let i = 0; i < smallFiles; i++) {
    const d = join(dir, 'site', `d${String(Math.floor(i / 1000)).padStart(2, '0')}`, `s${String(Math.floor(i / 40) % 25).padStart(2, '0')}`);
    if (i % 40 === 0) await mkdir(d, { recursive: true });
    const text = `# ${prose(3)}\n\n${prose(40 + Math.floor(rnd() * 1200))}\n`;
    await writeFile(join(d, `page-${i}.md`), text);
    smallBytes += text.length;
  }
  // Logs: 600 MiB at scale 1 in ten files (four access logs, six application logs: 60 MiB each at scale 1).
  const logTotal = Math.round(600 * MiB * scale);
  await mkdir(join(dir, 'logs'));
  let logBytes = 0;
  // The two kinds of log cover the same days, each on its own clock.
  const clock = { access: Date.UTC(2025, 0, 1), app: Date.UTC(2025, 0, 1) };
  const pool = logPools(rnd);
  for (let i = 0; logBytes < logTotal; i++) {
    const access = i % 5 < 2;
    const size = Math.min(logTotal - logBytes, Math.ceil(logTotal / 10));
    const parts: string[] = [];
    let got = 0;
    while (got < size) {
      const key = access ? 'access' : 'app';
      const c = (access ? accessLog : appLog)(rnd, pool, clock[key], Math.min(size - got, MiB));
      clock[key] = c.endMs;
      parts.push(c.text);
      got += c.text.length;
    }
    const buf = Buffer.from(parts.join(''), 'latin1').subarray(0, size);
    await writeFile(join(dir, 'logs', `${access ? 'access' : 'production'}-${String(i).padStart(2, '0')}.log`), buf);
    logBytes += buf.length;
  }
  return { scale, blobBytes, smallFiles, smallBytes, logBytes, totalBytes: blobBytes + smallBytes + logBytes };
}

/**
 * The benchmarks' data set at `scale` under `base` (kompox-archive-bench-SCALE/source),
 * generated once and reused by every benchmark (the same scale is the same disk).
 */
export async function benchDataSet(base: string, scale: number, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<{ dir: string; src: string; facts: DataSetFacts }> {
  const dir = join(base, `kompox-archive-bench-${scale}`);
  const src = join(dir, 'source');
  const factsFile = join(dir, 'source.json');
  if (existsSync(factsFile)) return { dir, src, facts: JSON.parse(await readFile(factsFile, 'utf8')) as DataSetFacts };
  // a data set without its facts file was cut off while being made: start again
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  log(`generating the data set (scale ${scale}) in ${src}`);
  const facts = await generateDataSet(src, scale);
  await writeFile(factsFile, JSON.stringify(facts));
  return { dir, src, facts };
}
