// Bundle src/console.js with its npm dependencies into the Python package's static files. The output
// is committed (pip install needs no Node) and CI rebuilds it and fails if it differs
// (scripts/build-console --check), so it must be byte-for-byte reproducible: no timestamps, no paths.
import { build } from "esbuild";

await build({
  entryPoints: ["src/console.js"],
  bundle: true,
  format: "iife",
  target: ["chrome109", "firefox115", "safari16"],
  minify: true,
  legalComments: "eof",
  charset: "utf8",
  outfile: "../recorderd/console/static/console.js",
  logLevel: "warning",
});
