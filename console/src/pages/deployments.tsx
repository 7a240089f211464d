import { api, type Deployment } from "../api";
import { setQuery } from "../router";
import { ActionButton, ActionForm, Badge, Choice, useAllowed, Input, Loaded, Page, Progress, Time, str, usePoll } from "../ui";
import { ClusterPicker } from "./droplets";

const SETTLED = new Set(["succeeded", "failed", "rolled_back", "rolled_out"]);

export function Deployments({ query }: { query: URLSearchParams }) {
  const cluster = query.get("cluster") ?? "";
  const strategies = useAllowed("StartDeploymentRequest.strategy");
  // Polled while any deployment is still moving, so its steps appear live; stops once all settled.
  const deployments = usePoll(async () => (cluster ? api.listDeployments(cluster) : []),
    (ds: Deployment[]) => ds.every((d) => SETTLED.has(d.status)), [cluster], 800, 8000);
  return (
    <Page title="Deployments">
      <div class="filters" role="search">
        <ClusterPicker value={cluster} blank="choose a cluster" onChange={(v) => setQuery({ cluster: v || undefined })} />
      </div>
      {!cluster ? <p class="empty">Choose a cluster to see its deployments.</p> : (
        <>
          <ActionForm label="Start deployment" submit={async (d) => {
            await api.startDeployment({ cluster_id: cluster, version: str(d, "version"), strategy: str(d, "strategy"), target_percent: Number(str(d, "target_percent")) });
            deployments.reload();
          }}>
            <Input label="Version" name="version" required placeholder="e.g. v1.2.3" />
            <Choice label="Strategy" name="strategy" options={strategies} />
            <Input label="Target traffic %" name="target_percent" type="number" min={1} max={100} defaultValue="100" required />
          </ActionForm>
          <Loaded state={deployments} empty="No deployments for this cluster.">
            {(ds) => <div class="stack">{ds.map((d) => <DeploymentCard key={d.id} d={d} reload={deployments.reload} />)}</div>}
          </Loaded>
        </>
      )}
    </Page>
  );
}

function DeploymentCard({ d, reload }: { d: Deployment; reload: () => void }) {
  return (
    <article class="card" aria-label={`Deployment ${d.version}`} data-testid="deployment">
      <header class="row">
        <h2>{d.version} <span class="muted small">({d.strategy}, target {d.target_percent}%)</span></h2>
        <Badge status={d.status} />
        {d.status !== "rolled_back" ? <ActionButton label="Roll back" danger confirm={`Roll back deployment ${d.version}?`} run={async () => { await api.rollback(d.id); reload(); }} /> : null}
      </header>
      {d.current_percent !== undefined ? <Progress value={d.current_percent} label={`Traffic on ${d.version}`} /> : null}
      <p class="muted small">Started <Time iso={d.created_at} />, updated <Time iso={d.updated_at} />{d.reason ? ` · ${d.reason}` : ""}</p>
      {d.logs.length ? (
        <ol class="timeline">
          {d.logs.map((l, i) => <li key={i}>{l.timestamp ? <Time iso={l.timestamp} /> : null} {l.action ? <strong>{l.action}</strong> : null} {l.percent !== undefined ? `${l.percent}%` : ""} {l.status ? <Badge status={l.status} /> : null} {l.message}</li>)}
        </ol>
      ) : <p class="empty">No steps yet.</p>}
    </article>
  );
}
