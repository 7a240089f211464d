import { defineConfig } from "vite";

// Preact's JSX through Vite's own transform (no Babel preset needed). `base: "./"` keeps asset URLs
// relative, so the build works from any bucket path or CloudFront prefix. `npm run dev` serves on
// http://localhost:5173, an origin the API's CORS allows by default; the API URL comes from
// public/config.json there, as it comes from the deployed config.json in the bucket.
export default defineConfig({
  base: "./",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { target: "es2020", outDir: "dist", emptyOutDir: true, sourcemap: false },
});
