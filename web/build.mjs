// `make assets`: bundle the console's ES modules from web/src into api/web/static/dist.
// Everything comes from node_modules (package-lock.json): no CDN, no fonts, no network.
import { build } from "esbuild";
import { rmSync } from "node:fs";

const out = "api/web/static/dist";
rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: {
    app: "web/src/app.js", // every page: htmx, the verified badge, the lookup form
    transparency: "web/src/transparency.js", // the transparency page (ECharts line)
    charts: "web/src/charts.js", // ECharts core with the charts the console draws
    verify: "web/src/verify.js", // the verifier alone (tests import it)
  },
  bundle: true,
  splitting: true, // shared code (the verifier, ECharts) in chunks loaded once
  format: "esm",
  minify: true,
  target: ["chrome120"],
  outdir: out,
  chunkNames: "chunk-[hash]",
  legalComments: "linked",
  logLevel: "warning",
});
console.log(`assets built in ${out}`);
