// The console's one API client. Every request goes through `request()`, so this is the place where:
//  - the API base URL is read from config.json (written next to index.html at deploy time, never baked
//    into the bundle);
//  - the signed-in API key (issue 13) is sent as `X-API-Key` on every call - see `session` and `authHeaders()`;
//  - the wire shapes are normalised: the v1 wire format (shared/reference/api-v1-wire.md) and our API
//    before issue 12 differ in a few envelopes and in job `parameters`/`result` being strings or objects.
//    Pages only ever see the normalised types below.

export interface Cluster { id: string; name: string; region: string; status: string; droplets: string[];
  last_checked?: string | null; created_at?: string; updated_at?: string; version?: number }
export interface Droplet { id: string; cluster_id?: string | null; name: string; region: string; provider?: string;
  size: string; image: string; status: string; ip_address?: string | null; created_at: string }
export interface Job { id: string; cluster_id: string; type: string; status: string; progress: number;
  trace_id?: string; parameters: unknown; result: unknown; error?: string | null; created_at: string;
  started_at?: string | null; completed_at?: string | null; updated_at?: string }
export interface JobPage { jobs: Job[]; page: number; page_size: number; total: number }
export interface Metric { id: string | number; cluster_id: string; type: string; value: number; unit: string; timestamp: string }
export interface LogLine { timestamp: string; function: string; level: string; message: string;
  /** The line's own fields (status change, progress, droplet...), without the logger's boilerplate. */
  details: Record<string, unknown> }
export interface Policy { id: string; cluster_id: string; name: string; type: string; enabled: boolean;
  min_replicas: number; max_replicas: number; metric_type?: string | null; metric_trigger?: number | null;
  time_window?: string | null; cost_limit?: number | null; cooldown_seconds?: number; version?: number; updated_at?: string }
export interface Decision { policy_id: string; policy_type?: string; action: string; current?: number; target?: number;
  reason: string; job_id?: string | null }
export interface Evaluation { cluster_id: string; evaluated: number; decisions: Decision[]; actions: Decision[] }
export interface DeploymentLog { step?: number; action?: string; percent?: number; status?: string; message: string; timestamp?: string }
export interface Deployment { id: string; cluster_id: string; version: string; strategy: string; target_percent: number;
  status: string; current_percent?: number; plan?: number[]; reason?: string | null; logs: DeploymentLog[];
  created_at?: string; started_at?: string; updated_at: string }
export interface Provider { id?: string; name: string; regions: string[]; capacity: number; used: number;
  classes: string[]; price_per_hour: number }
export interface Candidate { provider: string; eligible: boolean; price_per_hour?: number; region?: string | null; reason: string }
export interface Placement { provider: string; region: string; price_per_hour?: number; reasons: string[]; candidates: Candidate[] }
export interface LimiterConfig { key: string; name: string; scope: string; config: Record<string, unknown> }
export interface LimiterStatus { name: string; scope?: string; available: number; capacity: number; rate_per_sec: number }
export interface QueueStatus { queue_length: number | null; active_workers: number | null; queue_delayed?: number | null;
  dlq_depth: number | null; queue_error?: string | null; jobs_by_status?: Record<string, number> }
export interface Health { cluster_id: string; status: string; issues: string[]; timestamp: string }
export interface Diagnosis { insights: string[]; recommendations: string[] }
export interface Billing { cluster_id: string; droplet_count: number; hourly_cost: string; monthly_cost: string;
  accrued_cost?: string; droplets?: { droplet_id: string; provider: string; size: string; hourly_cost: string; accrued_cost: string }[] }

/** An API answer that was not 2xx: `message` is the API's own `error` text, shown to the person as is. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly requestId?: string) {
    super(message);
  }
}

interface ConsoleConfig { apiBaseUrl: string }
let configPromise: Promise<ConsoleConfig> | undefined;

/** config.json, uploaded next to index.html by the deploy (devstack/console.py on LocalStack). */
export function loadConfig(): Promise<ConsoleConfig> {
  // Served with Cache-Control: no-cache, so this revalidates; the default cache mode lets the preload be used.
  configPromise ??= fetch("./config.json").then(async (r) => {
    if (!r.ok) throw new ApiError(r.status, `config.json could not be read (HTTP ${r.status})`);
    const cfg = (await r.json()) as ConsoleConfig;
    return { apiBaseUrl: cfg.apiBaseUrl.replace(/\/+$/, "") };
  });
  return configPromise;
}

// --- the signed-in caller (issue 13) --------------------------------------------------------------------
export interface WhoAmI { principal: string; tenant: string; role: string; kind: string; name: string }
export interface ApiKey { id: string; prefix: string; name: string; tenant: string; role: string; created_by?: string;
  expires_at?: string; last_used_at?: string; revoked_at?: string; created_at: string }
export interface AuditEntry { id: number; occurred_at: string; tenant: string; principal: string; role: string;
  action: string; resource_id?: string; outcome: number; request_id: string }
export type Level = "viewer" | "operator" | "admin" | "platform";

const KEY_SLOT = "clustergenie.apiKey";
const RANK: Record<string, number> = { viewer: 0, operator: 1, admin: 2 };

/** The API key of this tab (sessionStorage: gone when the tab closes, never shared with other tabs) and who it
 * is. `who.kind === "local"`: the API runs with authentication off (local stage), everyone is an admin. */
export const session = {
  who: null as WhoAmI | null,
  key: (): string | null => sessionStorage.getItem(KEY_SLOT),
  signIn: async (key: string): Promise<WhoAmI> => {
    sessionStorage.setItem(KEY_SLOT, key.trim());
    try {
      session.who = await request<WhoAmI>("GET", "/auth/whoami");
      return session.who;
    } catch (err) {
      sessionStorage.removeItem(KEY_SLOT);
      throw err;
    }
  },
  signOut: (): void => {
    sessionStorage.removeItem(KEY_SLOT);
    session.who = null;
    window.dispatchEvent(new Event("clustergenie:signed-out"));
  },
  /** What the signed-in role may do; "platform": an admin of the platform tenant (`default`). */
  can: (level: Level): boolean => {
    const who = session.who;
    if (!who) return false;
    if (level === "platform") return who.role === "admin" && who.tenant === "default";
    return (RANK[who.role] ?? -1) >= RANK[level];
  },
};

/** Headers every request carries: the signed-in key. */
function authHeaders(): Record<string, string> {
  const key = session.key();
  return key ? { "X-API-Key": key } : {};
}

type Query = Record<string, string | number | undefined | null>;

async function request<T>(method: string, path: string, opts: { query?: Query; body?: unknown } = {}): Promise<T> {
  return (await send<T>(method, path, opts)).data;
}

/** `request()` with the answer's headers (paging is described in them: `Link`, `X-Total-Count`). */
async function send<T>(method: string, path: string, opts: { query?: Query; body?: unknown } = {}): Promise<{ data: T; headers: Headers }> {
  const { apiBaseUrl } = await loadConfig();
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined && v !== null && v !== "") qs.set(k, String(v));
  const url = `${apiBaseUrl}/api/v1${path}${qs.size ? `?${qs}` : ""}`;
  const headers: Record<string, string> = { Accept: "application/json", ...authHeaders() };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(url, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  } catch {
    throw new ApiError(0, `The API at ${apiBaseUrl} could not be reached (network error or CORS refusal).`);
  }
  const text = await response.text();
  let data: unknown = undefined;
  try { data = text ? JSON.parse(text) : undefined; } catch { data = text; }
  if (!response.ok) {
    const body = (data && typeof data === "object" ? data : {}) as { error?: string; message?: string; request_id?: string };
    const message = body.error ?? body.message ?? (typeof data === "string" && data ? data : `HTTP ${response.status}`);
    // The key was revoked or expired meanwhile: back to the sign-in page (not for the sign-in check itself).
    if (response.status === 401 && session.who) session.signOut();
    throw new ApiError(response.status, message, body.request_id);
  }
  return { data: data as T, headers: response.headers };
}

/** The `page` and `page_size` of the `rel="next"` link in an RFC 8288 `Link` header; null on the last page. */
function nextPage(link: string | null): { page: number; page_size?: number } | null {
  for (const part of (link ?? "").split(",")) {
    const m = /<([^>]*)>(.*)/.exec(part.trim());
    const rel = /;\s*rel\s*=\s*"?([^";]*)"?/i.exec(m?.[2] ?? "")?.[1] ?? "";
    if (!m || !rel.toLowerCase().split(/\s+/).includes("next")) continue;
    const params = new URLSearchParams(m[1].split("?")[1] ?? "");
    const page = Number(params.get("page"));
    const size = Number(params.get("page_size"));
    return Number.isInteger(page) && page > 1 ? { page, page_size: Number.isInteger(size) && size > 0 ? size : undefined } : null;
  }
  return null;
}

/** Every item of a list the API pages (GET /clusters, GET /droplets: the first 100 unless asked for more), in
 * the API's order: the pages are followed through their `Link: <...>; rel="next"` until the last. A server
 * that does not page (the v1 original) sends no Link, so its one answer is the whole list. */
async function everyPage<T>(path: string, key: string, query: Query = {}): Promise<T[]> {
  const items: T[] = [];
  let page: { page?: number; page_size?: number } | null = {};
  while (page) {
    const { data, headers }: { data: unknown; headers: Headers } = await send("GET", path, { query: { ...query, ...page } });
    items.push(...list<T>(data, key));
    const next = nextPage(headers.get("Link"));
    page = next && next.page > (page.page ?? 1) ? next : null;  // only forwards: a broken Link cannot loop
  }
  return items;
}

// --- tolerant readers (the only place that knows both wire shapes) -------------------------------------

/** A list that may come bare, as `{items: [...]}` or under a resource key such as `{clusters: [...]}`. */
function list<T>(data: unknown, key?: string): T[] {
  if (Array.isArray(data)) return data as T[];
  const obj = (data ?? {}) as Record<string, unknown>;
  if (key && Array.isArray(obj[key])) return obj[key] as T[];
  if (Array.isArray(obj.items)) return obj.items as T[];
  return [];
}

/** `{cluster: {...}, message}` envelopes, or the object itself. */
function one<T>(data: unknown, key: string): T {
  const obj = (data ?? {}) as Record<string, unknown>;
  return (obj[key] && typeof obj[key] === "object" ? obj[key] : obj) as T;
}

/** Job `parameters`/`result`: the v1 wire sends JSON text, our API before issue 12 sends objects. */
function jsonish(value: unknown): unknown {
  if (typeof value !== "string") return value ?? null;
  try { return JSON.parse(value); } catch { return value; }
}

function job(raw: Job): Job {
  return { ...raw, parameters: jsonish(raw.parameters), result: jsonish(raw.result), progress: Number(raw.progress ?? 0) };
}

function droplet(raw: Droplet & { cluster?: Cluster }): Droplet {
  return { ...raw, cluster_id: raw.cluster_id ?? raw.cluster?.id ?? null };
}

// Fields every Powertools line carries; what is left says what happened.
const LOG_BOILERPLATE = new Set(["level", "location", "message", "timestamp", "service", "environment", "cold_start", "function",
  "function_name", "function_memory_size", "function_arn", "function_request_id", "request_id", "xray_trace_id",
  "correlation_id", "job_id", "trace_id", "sampling_rate"]);

function logLine(raw: Record<string, unknown>): LogLine {
  const body = raw.line as Record<string, unknown> | string | undefined;
  const message = raw.message ?? (typeof body === "object" ? body?.message : body) ?? "";
  const details = typeof body === "object" && body
    ? Object.fromEntries(Object.entries(body).filter(([k]) => !LOG_BOILERPLATE.has(k))) : {};
  return { timestamp: String(raw.ts ?? raw.timestamp ?? "").replace(" ", "T"), function: String(raw.function ?? ""),
    level: String(raw.level ?? ""), message: String(message), details };
}

function numberOr(value: unknown): number | null {
  if (value === null || value === undefined || value === "") return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

/** The console shows and takes `metric_trigger` in percent (75 = 75 %). The v1 wire, and our API once
 * issue 12 lands, store a fraction (0.75), which the API's OpenAPI document says in the field's
 * description; before that it was percent. */
async function triggerIsFraction(): Promise<boolean> {
  const doc = await openapi().catch(() => ({} as OpenApiDoc));
  const prop = doc.components?.schemas?.Policy?.properties?.metric_trigger as { description?: string } | undefined;
  return /fraction/i.test(prop?.description ?? "");
}

async function policy(raw: Policy): Promise<Policy> {
  const trigger = numberOr(raw.metric_trigger);
  const scale = trigger !== null && (await triggerIsFraction()) ? 100 : 1;
  return { ...raw, metric_trigger: trigger === null ? null : Math.round(trigger * scale * 10000) / 10000, cost_limit: numberOr(raw.cost_limit) };
}

async function policyBody(body: Record<string, unknown>): Promise<Record<string, unknown>> {
  if (typeof body.metric_trigger !== "number" || !(await triggerIsFraction())) return body;
  return { ...body, metric_trigger: Math.round((body.metric_trigger / 100) * 1e6) / 1e6 };
}

function deployment(raw: Deployment): Deployment {
  const logs = (raw.logs ?? []).map((l) => (typeof l === "string" ? { message: l } : l));
  return { ...raw, logs, created_at: raw.created_at ?? raw.started_at };
}

// --- the API, one function per operation -----------------------------------------------------------------

export const api = {
  listClusters: () => everyPage<Cluster>("/clusters", "clusters"),
  getCluster: async (id: string) => one<Cluster>(await request("GET", `/clusters/${enc(id)}`), "cluster"),
  createCluster: async (body: { name: string; region: string }) =>
    one<Cluster>(await request("POST", "/clusters", { body }), "cluster"),
  updateCluster: async (id: string, body: Partial<Pick<Cluster, "name" | "region" | "status" | "version">>) =>
    one<Cluster>(await request("PUT", `/clusters/${enc(id)}`, { body }), "cluster"),
  deleteCluster: (id: string) => request("DELETE", `/clusters/${enc(id)}`),
  health: (id: string) => request<Health>("GET", `/health/${enc(id)}`).then((h) => ({ ...h, issues: h.issues ?? [] })),
  diagnose: (clusterId: string) => request<Diagnosis>("POST", "/diagnosis/diagnose", { body: { cluster_id: clusterId } }),
  billing: (clusterId: string) => request<Billing>("GET", "/billing/cluster", { query: { cluster_id: clusterId } }),

  listDroplets: async (clusterId?: string) =>
    (await everyPage<Droplet>("/droplets", "droplets", { cluster_id: clusterId })).map(droplet),
  createDroplet: async (body: { name: string; region: string; size: string; image: string; provider: string; cluster_id?: string }) =>
    droplet(one<Droplet>(await request("POST", "/droplets", { body }), "droplet")),
  deleteDroplet: (id: string) => request("DELETE", `/droplets/${enc(id)}`),
  migrateDroplet: (dropletId: string, targetProvider: string) =>
    request<{ job_id?: string }>("POST", "/migrations", { body: { droplet_id: dropletId, target_provider: targetProvider } }),

  listJobs: async (query: { page: number; page_size: number; sort_dir?: string }): Promise<JobPage> => {
    const data = await request<JobPage & { items?: Job[] }>("GET", "/jobs", { query });
    return { ...data, jobs: list<Job>(data, "jobs").map(job) };
  },
  getJob: async (id: string) => job(one<Job>(await request("GET", `/jobs/${enc(id)}`), "job")),
  jobLogs: async (id: string) => list<Record<string, unknown>>(await request("GET", `/jobs/${enc(id)}/logs`), "lines").map(logLine),
  createJob: async (body: { type: string; parameters: Record<string, string> }) =>
    job(one<Job>(await request("POST", "/jobs", { body }), "job")),

  listMetrics: async (query: { cluster_id?: string; type?: string; page?: number; page_size?: number }) => {
    const data = await request<{ total_count?: number; total?: number }>("GET", "/metrics", { query });
    return { metrics: list<Metric>(data, "metrics"), total: Number(data.total_count ?? data.total ?? 0) };
  },

  listPolicies: async (clusterId: string) =>
    Promise.all(list<Policy>(await request("GET", "/autoscaling/policies", { query: { cluster_id: clusterId } }), "policies").map(policy)),
  createPolicy: async (body: Record<string, unknown>) =>
    policy(one<Policy>(await request("POST", "/autoscaling/policies", { body: await policyBody(body) }), "policy")),
  updatePolicy: async (id: string, body: Record<string, unknown>) =>
    policy(one<Policy>(await request("PUT", `/autoscaling/policies/${enc(id)}`, { body: await policyBody(body) }), "policy")),
  deletePolicy: (id: string) => request("DELETE", `/autoscaling/policies/${enc(id)}`),
  evaluate: async (clusterId: string): Promise<Evaluation> => {
    const data = await request<Partial<Evaluation> & { actions?: unknown[] }>("POST", "/autoscaling/evaluate",
      { query: { cluster_id: clusterId }, body: { cluster_id: clusterId } });
    // v1 wire: `actions` are strings; ours: decision objects plus every policy's `decisions`.
    const asDecision = (a: unknown): Decision => (typeof a === "string" ? { policy_id: "", action: a, reason: a } : (a as Decision));
    const actions = (data.actions ?? []).map(asDecision);
    return { cluster_id: clusterId, evaluated: Number(data.evaluated ?? 0), actions, decisions: (data.decisions ?? actions).map(asDecision) };
  },

  listDeployments: async (clusterId: string) =>
    list<Deployment>(await request("GET", "/deployments", { query: { cluster_id: clusterId } }), "deployments").map(deployment),
  getDeployment: async (id: string) => deployment(one<Deployment>(await request("GET", `/deployments/${enc(id)}`), "deployment")),
  startDeployment: async (body: { cluster_id: string; version: string; strategy: string; target_percent: number }) =>
    deployment(one<Deployment>(await request("POST", "/deployments/start", { body }), "deployment")),
  rollback: (id: string) => request("POST", `/deployments/${enc(id)}/rollback`),

  listProviders: async () => list<Provider>(await request("GET", "/providers"), "providers"),
  schedule: async (body: { cluster_id: string; preferred_provider?: string; avoid_provider?: string }): Promise<Placement> => {
    const data = await request<Partial<Placement> & { provider: Provider | string }>("POST", "/schedule", { body });
    const raw = data.provider as Provider | string | undefined;
    const provider = typeof raw === "string" ? raw : raw?.name ?? "";
    return { provider, region: data.region ?? "", price_per_hour: data.price_per_hour, reasons: data.reasons ?? [], candidates: data.candidates ?? [] };
  },

  whoami: () => request<WhoAmI>("GET", "/auth/whoami"),
  listKeys: async () => list<ApiKey>(await request("GET", "/auth/keys"), "keys"),
  createKey: (body: { role: string; name: string; tenant?: string }) =>
    request<{ key: ApiKey; secret: string }>("POST", "/auth/keys", { body }),
  revokeKey: (id: string) => request("DELETE", `/auth/keys/${enc(id)}`),
  audit: (query: { tenant?: string; principal?: string; resource_id?: string; before_id?: number; limit?: number }) =>
    request<{ entries: AuditEntry[]; next_before_id?: number }>("GET", "/audit", { query }),

  queue: () => request<QueueStatus>("GET", "/observability/workerpool"),
  limiterStatus: (query: { name: string; scope_type?: string; scope_id?: string }) =>
    request<LimiterStatus>("GET", "/observability/ratelimit", { query }),
  limiterConfigs: async () => list<LimiterConfig>(await request("GET", "/observability/ratelimit/config/list")),
  saveLimiterConfig: (body: { name: string; scope_type?: string; scope_id?: string; refill_rate?: number; capacity?: number }) =>
    request("POST", "/observability/ratelimit/config", { body }),
  deleteLimiterConfig: (key: string) => request("DELETE", "/observability/ratelimit/config", { body: { key } }),

  /** The allowed values of a field (regions, sizes, statuses...), read from the API's OpenAPI document:
   * `"CreateDropletRequest.region"` names a schema's property, `"GET /api/v1/metrics?type"` a query
   * parameter. Several places may be given (schema names changed with the v1 wire work); the first that
   * has an enum wins. */
  allowedValues: async (...places: string[]): Promise<string[]> => {
    const doc = await openapi();
    for (const place of places) {
      const query = /^(\w+) (\S+)\?(\w+)$/.exec(place);
      let prop: OpenApiProp | undefined;
      if (query) {
        const op = doc.paths?.[query[2]]?.[query[1].toLowerCase()];
        prop = op?.parameters?.find((p) => p.name === query[3])?.schema;
      } else {
        const [schema, field] = place.split(".");
        prop = doc.components?.schemas?.[schema]?.properties?.[field];
      }
      const values = enumOf(prop, doc);
      if (values?.length) return values;
    }
    return [];
  },
};

interface OpenApiProp { enum?: string[]; anyOf?: OpenApiProp[]; allOf?: OpenApiProp[]; $ref?: string; default?: string; items?: OpenApiProp }
interface OpenApiDoc {
  components?: { schemas?: Record<string, { properties?: Record<string, OpenApiProp>; enum?: string[] }> };
  paths?: Record<string, Record<string, { parameters?: { name: string; schema?: OpenApiProp }[] }>>;
}
let openapiPromise: Promise<OpenApiDoc> | undefined;
function openapi(): Promise<OpenApiDoc> {
  openapiPromise ??= request<OpenApiDoc>("GET", "/openapi.json");
  return openapiPromise;
}
function enumOf(prop: OpenApiProp | undefined, doc: OpenApiDoc): string[] | undefined {
  if (!prop) return undefined;
  if (prop.enum) return prop.enum;
  if (prop.$ref) return enumOf(doc.components?.schemas?.[prop.$ref.split("/").pop() ?? ""] as OpenApiProp, doc);
  for (const sub of [...(prop.anyOf ?? []), ...(prop.allOf ?? [])]) {
    const found = enumOf(sub, doc);
    if (found) return found;
  }
  return prop.default ? [prop.default] : undefined;
}

function enc(id: string): string {
  return encodeURIComponent(id);
}
