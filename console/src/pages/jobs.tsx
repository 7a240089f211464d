import { api, type Job, type LogLine } from "../api";
import { pretty } from "../format";
import { navigate, setQuery } from "../router";
import { ActionForm, Badge, Choice, useAllowed, Loaded, Page, Progress, Select, Time, str, useAsync, usePoll } from "../ui";
import { ClusterPicker, useClusters } from "./droplets";

const FINAL = new Set(["completed", "failed"]);
const PAGE_SIZE = 20;

export function Jobs({ query }: { query: URLSearchParams }) {
  const page = Math.max(1, Number(query.get("page") ?? 1) || 1);
  const status = query.get("status") ?? "";
  const type = query.get("type") ?? "";
  const cluster = query.get("cluster") ?? "";
  const jobs = useAsync(() => api.listJobs({ page, page_size: PAGE_SIZE, sort_dir: "desc" }), [page]);
  const clusters = useClusters();
  const types = useAllowed("CreateJobRequest.type");
  const statuses = useAllowed("JobOut.status", "Job.status");
  // The API pages jobs newest first and has no filter parameters yet; the filters narrow the page shown.
  const shown = (jobs.data?.jobs ?? []).filter((j) => (!status || j.status === status) && (!type || j.type === type) &&
    (!cluster || (j.cluster_id || clusterOf(j)) === cluster));
  const pages = Math.max(1, Math.ceil((jobs.data?.total ?? 0) / PAGE_SIZE));
  return (
    <Page title="Jobs">
      <ActionForm label="Create job" submit={async (d) => {
        const job = await api.createJob({ type: str(d, "type"), parameters: { cluster_id: str(d, "cluster_id") } });
        navigate(`/jobs/${encodeURIComponent(job.id)}`);
      }}>
        <Choice label="Job type" name="type" options={types} />
        <label class="field"><span>Cluster for the job</span>
          <select name="cluster_id" required>
            {(clusters.data ?? []).map((c) => <option key={c.id} value={c.id} selected={c.id === cluster}>{c.name}</option>)}
          </select>
        </label>
      </ActionForm>
      <div class="filters" role="search">
        <Select label="Status" value={status} blank="any status" options={statuses} onChange={(v) => setQuery({ status: v || undefined })} />
        <Select label="Type" value={type} blank="any type" options={types} onChange={(v) => setQuery({ type: v || undefined })} />
        <ClusterPicker value={cluster} blank="any cluster" onChange={(v) => setQuery({ cluster: v || undefined })} />
      </div>
      <Loaded state={jobs} isEmpty={(p) => p.jobs.length === 0} empty="No jobs yet.">
        {(p) => (
          <>
            {shown.length === 0 ? <p class="empty">No job on this page matches the filters.</p> : (
              <table>
                <thead><tr><th>Job</th><th>Type</th><th>Cluster</th><th>Status</th><th>Progress</th><th>Created</th></tr></thead>
                <tbody>
                  {shown.map((j) => (
                    <tr key={j.id}>
                      <td><a href={`#/jobs/${encodeURIComponent(j.id)}`}>{j.id}</a></td><td>{j.type}</td><td>{j.cluster_id || clusterOf(j) || "—"}</td>
                      <td><Badge status={j.status} /></td><td>{j.progress}%</td><td><Time iso={j.created_at} /></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            <nav class="pager" aria-label="Pages">
              <button type="button" disabled={page <= 1} onClick={() => setQuery({ page: String(page - 1) })}>Previous</button>
              <span>Page {p.page} of {pages} ({p.total} jobs)</span>
              <button type="button" disabled={page >= pages} onClick={() => setQuery({ page: String(page + 1) })}>Next</button>
            </nav>
          </>
        )}
      </Loaded>
    </Page>
  );
}

function clusterOf(job: Job): string {
  const params = job.parameters as Record<string, unknown> | null;
  return params && typeof params === "object" && typeof params.cluster_id === "string" ? params.cluster_id : "";
}

/** A log line as an event: "job transition queued → processing (5%)", "job events applied: job_started, job_progress". */
function describe(line: LogLine): string {
  const d = line.details;
  let text = line.message;
  if (d.from !== undefined && d.to !== undefined) text += ` ${d.from} → ${d.to}`;
  if (d.event_type) text += `: ${d.event_type}`;
  if (Array.isArray(d.event_types)) text += `: ${d.event_types.join(", ")}`;
  if (d.droplet_id) text += ` ${d.droplet_id}`;
  if (typeof d.progress === "number") text += ` (${d.progress}%)`;
  return text;
}

function detailsText(details: Record<string, unknown>): string {
  return Object.entries(details).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
}

interface TimelineEntry { at: string; what: string; source?: string }

function timeline(job: Job, logs: LogLine[]): TimelineEntry[] {
  const entries: TimelineEntry[] = [{ at: job.created_at, what: "created (queued)", source: "api" }];
  if (job.started_at) entries.push({ at: job.started_at, what: "processing started", source: "worker" });
  for (const line of logs) if (line.timestamp) entries.push({ at: line.timestamp, what: describe(line), source: line.function });
  if (job.completed_at) entries.push({ at: job.completed_at, what: job.status, source: "worker" });
  return entries.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
}

const LOG_GRACE_MS = 60_000;

/** The job ended and its log lines caught up: log shipping is asynchronous, so the lines of the job's last
 * moments arrive a little after its status; polling goes on until a line from its end has arrived (or a minute). */
function settled({ job, logs }: { job: Job; logs: LogLine[] }): boolean {
  if (!FINAL.has(job.status)) return false;
  const end = Date.parse(job.completed_at ?? job.updated_at ?? "");
  if (!Number.isFinite(end) || Date.now() - end > LOG_GRACE_MS) return true;
  return logs.some((l) => Date.parse(l.timestamp) >= end);
}

export function JobDetail({ id }: { id: string }) {
  // The job and its log lines are polled together, faster while they change, and no more once the job ended.
  const state = usePoll(async () => {
    const [job, logs] = await Promise.all([api.getJob(id), api.jobLogs(id).catch(() => [] as LogLine[])]);
    return { job, logs };
  }, settled, [id]);
  const live = state.data && !FINAL.has(state.data.job.status);
  const settling = state.data && !live && !settled(state.data);
  return (
    <Page title={`Job ${id}`}>
      <Loaded state={state}>
        {({ job, logs }) => (
          <>
            <dl class="facts">
              <div><dt>Type</dt><dd>{job.type}</dd></div>
              <div><dt>Status</dt><dd data-testid="job-status"><Badge status={job.status} /></dd></div>
              <div><dt>Cluster</dt><dd>{(job.cluster_id || clusterOf(job)) ? <a href={`#/clusters/${encodeURIComponent(job.cluster_id || clusterOf(job))}`}>{job.cluster_id || clusterOf(job)}</a> : "—"}</dd></div>
              <div><dt>Created</dt><dd><Time iso={job.created_at} /></dd></div>
              <div><dt>Completed</dt><dd><Time iso={job.completed_at} /></dd></div>
              <div><dt>Trace</dt><dd class="small">{job.trace_id ?? "—"}</dd></div>
            </dl>
            <Progress value={job.progress} label="Job progress" />
            <p class="muted small" role="status" aria-live="polite">{live ? "Updating live…" : settling ? "Finished; collecting its last log lines…" : "Finished; no longer updating."}</p>
            {job.error ? <div class="error" role="alert">{job.error}</div> : null}
            <div class="grid2">
              <section aria-labelledby="h-params"><h2 id="h-params">Parameters</h2><pre>{pretty(job.parameters)}</pre></section>
              <section aria-labelledby="h-result"><h2 id="h-result">Result</h2><pre>{pretty(job.result)}</pre></section>
            </div>
            <h2>Event timeline</h2>
            <ol class="timeline" data-testid="timeline">
              {timeline(job, logs).map((e, i) => <li key={i}><Time iso={e.at} /> <strong>{e.what}</strong> {e.source ? <span class="muted small">({e.source})</span> : null}</li>)}
            </ol>
            <h2>Log lines</h2>
            {logs.length === 0 ? <p class="empty">No log lines yet.</p> : (
              <pre class="logs" data-testid="job-logs">{logs.map((l) => `${l.timestamp} ${l.level.padEnd(7)} ${l.function}: ${l.message} ${detailsText(l.details)}`).join("\n")}</pre>
            )}
          </>
        )}
      </Loaded>
    </Page>
  );
}
