import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, session, type Level, type WhoAmI } from "./api";
import { ApiKeys, Audit, SignIn } from "./pages/identity";
import { errorText } from "./ui";
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

// [path, label, the level needed to see the page at all]
const NAV: [string, string, Level][] = [
  ["/", "Overview", "viewer"], ["/clusters", "Clusters", "viewer"], ["/droplets", "Droplets", "viewer"],
  ["/jobs", "Jobs", "viewer"], ["/metrics", "Metrics", "viewer"], ["/autoscaling", "Autoscaling", "viewer"],
  ["/deployments", "Deployments", "viewer"], ["/scheduling", "Providers & scheduling", "viewer"],
  ["/operations", "Rate limiting & operations", "platform"], ["/keys", "API keys", "admin"], ["/audit", "Audit log", "admin"],
];

/** Signed in (issue 13): the key in this tab's sessionStorage is checked once with GET /auth/whoami; without
 * one, or when the API refuses it, the sign-in page. With authentication off (local stage) the API answers
 * whoami for anyone as an admin: any text signs in. */
function App() {
  const [who, setWho] = useState<WhoAmI | null | undefined>(undefined);
  useEffect(() => {
    const out = () => setWho(null);
    window.addEventListener("clustergenie:signed-out", out);
    // Without a key in this tab there is nothing to check: the sign-in page, without a 401 in the console.
    if (!session.key()) { setWho(null); return () => window.removeEventListener("clustergenie:signed-out", out); }
    api.whoami()
      .then((w) => { session.who = w; setWho(w); })
      .catch((err) => {
        // Refused (revoked, expired): forget the key and ask again. Anything else: the sign-in page says why.
        if (err instanceof ApiError && err.status === 401) session.signOut(); else console.warn(errorText(err));
        setWho(null);
      });
    return () => window.removeEventListener("clustergenie:signed-out", out);
  }, []);
  if (who === undefined) return <p class="loading" aria-busy="true">Loading…</p>;
  if (who === null) return <><Header who={null} /><main id="main"><SignIn onSignedIn={setWho} /></main></>;
  return <Console key={who.principal} who={who} />;
}

function Header({ who }: { who: WhoAmI | null }) {
  const route = useRoute();
  const current = `/${route.parts[0] ?? ""}`;
  return (
    <header class="top">
      <a class="brand" href="#/">ClusterGenie</a>
      {who ? (
        <nav aria-label="Main">
          <ul>
            {NAV.filter(([, , level]) => session.can(level)).map(([path, label]) => (
              <li key={path}><a href={`#${path}`} aria-current={current === path ? "page" : undefined}>{label}</a></li>
            ))}
          </ul>
        </nav>
      ) : null}
      {who ? (
        <p class="who" data-testid="who">
          <span title={who.principal}>{who.name || who.principal}</span> · tenant <strong>{who.tenant}</strong> · <strong>{who.role}</strong>
          {who.kind === "local" ? " (authentication off)" : <button type="button" onClick={() => session.signOut()}>Sign out</button>}
        </p>
      ) : null}
    </header>
  );
}

function Console({ who }: { who: WhoAmI }) {
  const route = useRoute();
  const [section, id] = route.parts;
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
    case "keys": page = <ApiKeys />; break;
    case "audit": page = <Audit query={route.query} />; break;
    default: page = <section class="page"><h1 tabIndex={-1}>Not found</h1><p>No page at <code>{route.path}</code>. <a href="#/">Back to the overview</a>.</p></section>;
  }
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.querySelector<HTMLElement>("main h1")?.focus(); }}>Skip to content</a>
      <Header who={who} />
      <main id="main">{page}</main>
    </>
  );
}

const root = document.getElementById("app")!;
root.textContent = ""; // the "Loading the console…" placeholder shown until this script ran
render(<App />, root);
