// Bundle the console: src/main.js + src/styles.css -> <out>/assets/{app,app.css}-<hash>,
// and <out>/index.html pointing at them. The api function serves <out> (gitferry/console.py).
// Usage: node build.mjs OUT_DIR
import { build } from "esbuild";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";

const out = resolve(process.argv[2] ?? "../functions/api/console");
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });

const result = await build({
  entryPoints: { app: "src/main.js" },
  bundle: true,
  format: "esm",
  target: ["es2022"],
  minify: true,
  sourcemap: false,
  legalComments: "linked",
  entryNames: "[name]-[hash]",
  outdir: join(out, "assets"),
  metafile: true,
  logLevel: "warning",
});

const names = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = names.find((n) => n.endsWith(".js"));
const css = names.find((n) => n.endsWith(".css"));
if (!js || !css) throw new Error(`esbuild wrote no JS or CSS bundle: ${names.join(", ")}`);
// esbuild names legal comments *.LEGAL.txt: served as text (third-party licences).
const page = readFileSync("index.html", "utf8").replaceAll("%APP_JS%", js).replaceAll("%APP_CSS%", css);
writeFileSync(join(out, "index.html"), page);
console.log(`console built into ${out}: ${names.join(", ")}`);
