import { render } from "preact";
import { useEffect, useRef } from "preact/hooks";
import "./styles.css";
import { useRoute } from "./router";
import { Overview } from "./pages/overview";
import { ClusterDetail, Clusters } from "./pages/clusters";
import { Droplets } from "./pages/droplets";
import { JobDetail, Jobs } from "./pages/jobs";
import { Metrics } from "./pages/metrics";
import { Autoscaling } from "./pages/autoscaling";
import { Deployments } from "./pages/deployments";
import { Scheduling } from "./pages/scheduling";
import { Operations } from "./pages/operations";

const NAV: [string, string][] = [
  ["/", "Overview"], ["/clusters", "Clusters"], ["/droplets", "Droplets"], ["/jobs", "Jobs"], ["/metrics", "Metrics"],
  ["/autoscaling", "Autoscaling"], ["/deployments", "Deployments"], ["/scheduling", "Providers & scheduling"],
  ["/operations", "Rate limiting & operations"],
];

function App() {
  const route = useRoute();
  const [section, id] = route.parts;
  const current = `/${section ?? ""}`;
  const first = useRef(true);
  useEffect(() => {
    // After a navigation (not the first load), move focus to the page heading so keyboard and
    // screen-reader users start there.
    if (first.current) { first.current = false; return; }
    const h1 = document.querySelector<HTMLElement>("main h1");
    if (h1 && document.activeElement?.tagName !== "INPUT" && document.activeElement?.tagName !== "SELECT") h1.focus({ preventScroll: true });
  }, [route.path]);
  let page;
  switch (section) {
    case undefined: page = <Overview />; break;
    case "clusters": page = id ? <ClusterDetail id={id} /> : <Clusters query={route.query} />; break;
    case "droplets": page = <Droplets query={route.query} />; break;
    case "jobs": page = id ? <JobDetail id={id} /> : <Jobs query={route.query} />; break;
    case "metrics": page = <Metrics query={route.query} />; break;
    case "autoscaling": page = <Autoscaling query={route.query} />; break;
    case "deployments": page = <Deployments query={route.query} />; break;
    case "scheduling": page = <Scheduling query={route.query} />; break;
    case "operations": page = <Operations query={route.query} />; break;
    default: page = <section class="page"><h1 tabIndex={-1}>Not found</h1><p>No page at <code>{route.path}</code>. <a href="#/">Back to the overview</a>.</p></section>;
  }
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.querySelector<HTMLElement>("main h1")?.focus(); }}>Skip to content</a>
      <header class="top">
        <a class="brand" href="#/">ClusterGenie</a>
        <nav aria-label="Main">
          <ul>
            {NAV.map(([path, label]) => (
              <li key={path}><a href={`#${path}`} aria-current={current === path ? "page" : undefined}>{label}</a></li>
            ))}
          </ul>
        </nav>
      </header>
      <main id="main">{page}</main>
    </>
  );
}

const root = document.getElementById("app")!;
root.textContent = ""; // the "Loading the console…" placeholder shown until this script ran
render(<App />, root);
