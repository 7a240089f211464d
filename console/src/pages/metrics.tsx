import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { api, type Metric } from "../api";
import { setQuery } from "../router";
import { Loaded, Page, Select, useAllowed, useAsync } from "../ui";
import { ClusterPicker } from "./droplets";

const RANGES: [string, string][] = [["15m", "last 15 minutes"], ["1h", "last hour"], ["6h", "last 6 hours"], ["24h", "last 24 hours"], ["7d", "last 7 days"]];
const RANGE_SECONDS: Record<string, number> = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800 };
const MAX_PAGES = 5;

/** Samples of one cluster (and type) newer than `since`, newest pages first, at most MAX_PAGES pages of 100. */
async function samples(clusterId: string, type: string | undefined, since: number): Promise<Metric[]> {
  const out: Metric[] = [];
  for (let page = 1; page <= MAX_PAGES; page++) {
    const { metrics, total } = await api.listMetrics({ cluster_id: clusterId, type, page, page_size: 100 });
    out.push(...metrics);
    const oldest = metrics.length ? Math.min(...metrics.map((m) => Date.parse(m.timestamp))) : 0;
    if (out.length >= total || metrics.length < 100 || oldest < since) break;
  }
  return out.filter((m) => Date.parse(m.timestamp) >= since);
}

export function Metrics({ query }: { query: URLSearchParams }) {
  const cluster = query.get("cluster") ?? "";
  const type = query.get("type") ?? "";
  const range = query.get("range") ?? "1h";
  const data = useAsync(async () => {
    if (!cluster) return undefined;
    return samples(cluster, type || undefined, Date.now() - (RANGE_SECONDS[range] ?? 3600) * 1000);
  }, [cluster, type, range]);
  const allTypes = useAllowed("GET /api/v1/metrics?type", "MetricOut.type", "Metric.type");
  const types = type ? [type] : allTypes;
  return (
    <Page title="Metrics">
      <div class="filters" role="search">
        <ClusterPicker value={cluster} blank="choose a cluster" onChange={(v) => setQuery({ cluster: v || undefined })} />
        <Select label="Metric type" value={type} blank="all types" options={allTypes} onChange={(v) => setQuery({ type: v || undefined })} />
        <Select label="Time range" value={range} options={RANGES} onChange={(v) => setQuery({ range: v })} />
      </div>
      {!cluster ? <p class="empty">Choose a cluster to see its metrics.</p> : (
        <Loaded state={data} isEmpty={(d) => !d || d.length === 0} empty="No samples in this time range.">
          {(d) => <div class="charts">{types.map((t) => <Chart key={t} type={t} samples={(d ?? []).filter((m) => m.type === t)} />)}</div>}
        </Loaded>
      )}
    </Page>
  );
}

function Chart({ type, samples }: { type: string; samples: Metric[] }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!box.current || samples.length === 0) return;
    const points = [...samples].sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
    const xs = points.map((m) => Date.parse(m.timestamp) / 1000);
    const ys = points.map((m) => m.value);
    const unit = points[0]?.unit ?? "";
    const width = Math.max(280, Math.min(box.current.clientWidth || 600, 900));
    const plot = new uPlot({
      width, height: 220, title: `${type} (${unit})`,
      series: [{}, { label: type, stroke: "#2563eb", width: 2, value: (_u, v) => (v == null ? "" : `${v.toFixed(1)} ${unit}`) }],
      axes: [{}, { label: unit }],
    }, [xs, ys], box.current);
    return () => plot.destroy();
  }, [samples, type]);
  return (
    <figure class="chart" aria-label={`${type} chart`}>
      {samples.length === 0 ? <p class="empty">No {type} samples in this range.</p> : <div ref={box} />}
      <figcaption class="muted small">{samples.length} samples</figcaption>
    </figure>
  );
}
