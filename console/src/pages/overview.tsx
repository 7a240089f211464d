import { api, session } from "../api";
import { Badge, Loaded, Page, Time, useAsync } from "../ui";

function countBy<T>(items: T[], key: (t: T) => string): [string, number][] {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return [...counts.entries()].sort();
}

export function Overview() {
  const health = useAsync(async () => {
    const started = performance.now();
    const clusters = await api.listClusters();
    return { clusters, latency: Math.round(performance.now() - started) };
  }, []);
  const droplets = useAsync(() => api.listDroplets(), []);
  const jobs = useAsync(() => api.listJobs({ page: 1, page_size: 5, sort_dir: "desc" }), []);
  // The job queue is an observability route: platform admins only (issue 13); others do not see the card.
  const showQueue = session.can("platform");
  const queue = useAsync(() => (showQueue ? api.queue() : Promise.resolve(null)), [showQueue]);
  return (
    <Page title="Overview">
      <div class="cards">
        <article class="card" aria-labelledby="h-api">
          <h2 id="h-api">API health</h2>
          <Loaded state={health}>
            {(d) => <p data-testid="api-health"><Badge status="healthy" /> answered in {d.latency} ms</p>}
          </Loaded>
        </article>
        <article class="card" aria-labelledby="h-clusters">
          <h2 id="h-clusters">Clusters by status</h2>
          <Loaded state={health} isEmpty={(d) => d.clusters.length === 0} empty="No clusters yet.">
            {(d) => <dl class="counts">{countBy(d.clusters, (c) => c.status).map(([s, n]) => <div key={s}><dt><a href={`#/clusters?status=${s}`}><Badge status={s} /></a></dt><dd>{n}</dd></div>)}</dl>}
          </Loaded>
        </article>
        <article class="card" aria-labelledby="h-droplets">
          <h2 id="h-droplets">Droplets by status</h2>
          <Loaded state={droplets} empty="No droplets yet.">
            {(d) => <dl class="counts">{countBy(d, (x) => x.status).map(([s, n]) => <div key={s}><dt><Badge status={s} /></dt><dd>{n}</dd></div>)}</dl>}
          </Loaded>
        </article>
        {showQueue ? <article class="card" aria-labelledby="h-queue">
          <h2 id="h-queue">Job queue</h2>
          <Loaded state={queue}>
            {(q) => q && (
              <>
                <dl class="counts">
                  <div><dt>Queued</dt><dd data-testid="queue-depth">{q.queue_length ?? "?"}</dd></div>
                  <div><dt>In flight</dt><dd>{q.active_workers ?? "?"}</dd></div>
                  <div><dt>Dead-lettered</dt><dd data-testid="dlq-depth">{q.dlq_depth ?? "?"}</dd></div>
                </dl>
                {q.queue_error ? <p class="error" role="alert">{q.queue_error}</p> : null}
              </>
            )}
          </Loaded>
        </article> : null}
      </div>
      <h2>Newest jobs</h2>
      <Loaded state={jobs} isEmpty={(p) => p.jobs.length === 0} empty="No jobs yet.">
        {(p) => (
          <table>
            <thead><tr><th>Job</th><th>Type</th><th>Status</th><th>Progress</th><th>Created</th></tr></thead>
            <tbody>
              {p.jobs.map((j) => (
                <tr key={j.id}><td><a href={`#/jobs/${encodeURIComponent(j.id)}`}>{j.id}</a></td><td>{j.type}</td><td><Badge status={j.status} /></td><td>{j.progress}%</td><td><Time iso={j.created_at} /></td></tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
    </Page>
  );
}
