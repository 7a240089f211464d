import { defineConfig } from "vite";

declare const process: { env: Record<string, string | undefined> };

// Preact's JSX through Vite's own transform (no Babel preset needed). `base: "./"` keeps asset URLs
// relative, so the build works from any bucket path or CloudFront prefix.
export default defineConfig({
  base: "./",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { target: "es2020", outDir: "dist", emptyOutDir: true, sourcemap: false },
  server: {
    // `npm run dev`: the dev server proxies /api to the API named by CG_API_URL, so local work needs no
    // CORS; the deployed console talks to the API cross-origin (config.json) like it will on AWS.
    proxy: process.env.CG_API_URL ? { "/api": { target: process.env.CG_API_URL, changeOrigin: true } } : undefined,
  },
});
